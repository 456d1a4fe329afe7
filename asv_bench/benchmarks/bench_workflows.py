"""Workflow benchmarks (small sizes), mirroring ``python -m fastloss bench --family workflows``.

Each class times fastloss's side and its real peer as two benchmarks of the same class, so
``asv compare`` shows both: L-BFGS-B logistic regression against scikit-learn's
``LogisticRegression(solver="lbfgs")``, fastloss.linear_model fits against scikit-learn's,
the PyTorch bridge against PyTorch's loss, XGBoost/LightGBM 100 rounds with a fastloss
objective against the built-in one (skipped when missing), a call with every core busy
against the serial kernel, and float64 per-call time against scikit-learn, NumPy, PyTorch.
Accuracy (coefficient difference, test AUC) is reported by ``track_*`` benchmarks.
"""
import fastloss

from . import timing


def _W():
    """fastloss._bench.workflows, imported in ``setup`` (older commits lack it: their
    benchmarks are then skipped instead of breaking the discovery of every benchmark)."""
    try:
        from fastloss._bench import workflows
    except ImportError:
        raise NotImplementedError("fastloss._bench.workflows is missing in this commit")
    return workflows


@timing
class WorkflowLBFGS:
    params = (["binary", "multinomial"], ["1000x20", "20000x50"])
    param_names = ["model", "shape"]
    timeout = 600
    repeat = (5, 10, 30.0)

    def setup(self, model, shape):
        n, d = map(int, shape.split("x"))
        self.case = _W()._lr_case(n, d, 2 if model == "binary" else 5)
        self.args, self.kw = self.case.make()
        self.fl = self.case.run(self.args, self.kw)
        self.fl()
        try:
            self.sk = self.case.peers["sklearn"](self.args, self.kw)
            self.sk()
        except ImportError:   # scikit-learn is not in this environment
            raise NotImplementedError("scikit-learn is not installed")

    def time_fastloss_fit(self, model, shape):
        self.fl()

    def time_sklearn_fit(self, model, shape):
        self.sk()

    def track_max_coef_diff(self, model, shape):
        return float(self.case.note(self.args, self.kw).rsplit(" ", 1)[1])
    track_max_coef_diff.unit = "abs"


@timing
class WorkflowBoosting:
    params = (["xgboost", "lightgbm"],)
    param_names = ["library"]
    timeout = 600
    repeat = (3, 5, 60.0)
    min_run_count = 3

    def setup(self, lib):
        self.case = _W()._gb_case(lib, 5000)
        try:
            self.args, self.kw = self.case.make()
        except ImportError:
            raise NotImplementedError(f"{lib} is not installed")
        self.fl = self.case.run(self.args, self.kw)
        self.builtin = self.case.peers["builtin"](self.args, self.kw)
        self.fl(), self.builtin()

    def time_fastloss_objective(self, lib):
        self.fl()

    def time_builtin_objective(self, lib):
        self.builtin()


@timing
class WorkflowContention:
    """huber value+gradient, float64, with one busy-loop process per core of the pool."""
    params = ([20_000, 200_000],)
    param_names = ["n"]
    timeout = 300

    def setup(self, n):
        self.case = _W()._contention_case(n)
        self.args, self.kw = self.case.make()
        self.vg = fastloss.value_and_grad(fastloss.huber)
        self.serial = self.case.peers["serial"](self.args, self.kw)
        self.vg(*self.args, **self.kw), self.serial()
        self.stop = self.case.load()

    def teardown(self, n):
        self.stop()

    def time_default_threads(self, n):
        self.vg(*self.args, **self.kw)

    def time_serial_kernel(self, n):
        self.serial()


@timing
class WorkflowFloat64PerCall:
    params = ([10, 1_000, 10_000, 100_000], ["fastloss", "sklearn", "numpy", "torch"])
    param_names = ["n", "impl"]
    timeout = 300

    def setup(self, n, impl):
        case = _W()._f64_case(n)
        args, kw = case.make()
        if impl == "fastloss":
            vg = fastloss.value_and_grad(fastloss.sigmoid_binary_cross_entropy)
            self.f = lambda: vg(*args, **kw)
        else:
            try:
                self.f = case.peers[impl](args, kw)
            except ImportError:
                raise NotImplementedError(f"{impl} is not installed")
        self.f()

    def time_value_and_grad(self, n, impl):
        self.f()


@timing
class WorkflowEstimators:
    """fastloss.linear_model fits against scikit-learn's (the same objective)."""
    params = (["multinomial", "poisson"], ["1000x20", "20000x50"])
    param_names = ["model", "shape"]
    timeout = 600
    repeat = (5, 10, 30.0)

    def setup(self, model, shape):
        n, d = map(int, shape.split("x"))
        case = _W()._estimator_case(model, n, d)
        try:
            args, kw = case.make()
        except ImportError:
            raise NotImplementedError("scikit-learn is not installed")
        self.fl = case.run(args, kw)
        self.sk = case.peers["sklearn"](args, kw)
        self.fl(), self.sk()

    def time_fastloss_fit(self, model, shape):
        self.fl()

    def time_sklearn_fit(self, model, shape):
        self.sk()


@timing
class WorkflowTorchBridge:
    """fastloss.torch.huber forward + backward against torch's huber_loss, float32."""
    params = ([10_000, 1_000_000],)
    param_names = ["n"]
    timeout = 300

    def setup(self, n):
        case = _W()._torch_case(n)
        try:
            args, kw = case.make()
        except ImportError:
            raise NotImplementedError("PyTorch is not installed")
        self.fl = case.run(args, kw)
        self.peer = case.peers["torch"](args, kw)
        self.fl(), self.peer()

    def time_fastloss_torch(self, n):
        self.fl()

    def time_torch(self, n):
        self.peer()
