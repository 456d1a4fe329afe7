"""Sphinx configuration of the fastloss site.

Build: ``python -m pip install -e ".[docs]" && sphinx-build -W -b html docs docs/_build/html``.
The API pages of the losses and the gallery are generated from ``fastloss.LOSSES`` by the
extensions in ``docs/_ext`` at every build.
"""
import os
import sys
from datetime import date

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "_ext"))
sys.path.insert(0, os.path.dirname(HERE))          # the checkout's fastloss
os.environ.setdefault("NUMBA_CACHE_DIR", os.path.join(HERE, "_build", ".numba-cache"))
os.environ.setdefault("MPLBACKEND", "Agg")

import fastloss  # noqa: E402

project = "fastloss"
author = "the fastloss authors"
copyright = f"{date.today().year}, {author}"
release = version = fastloss.__version__

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "numpydoc",
    "apigen",       # docs/_ext/apigen.py: docs/api/losses.rst from fastloss.LOSSES
    "gallery",      # docs/_ext/gallery.py: the gallery of every loss
]
import importlib  # noqa: E402

for _ext in ("sphinx_copybutton",        # copy buttons on code blocks
             "sphinx-mathjax-offline"):  # MathJax 3 served from the site: formulas offline
    try:
        importlib.import_module(_ext)
        extensions.append(_ext)
    except ImportError:
        pass
copybutton_prompt_text = r">>> |\.\.\. |\$ "
copybutton_prompt_is_regexp = True

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store", "_scripts", "**/README.md"]
templates_path = []

myst_heading_anchors = 3
myst_enable_extensions = ["dollarmath", "amsmath"]

autosummary_generate = True
autodoc_typehints = "none"
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False
numpydoc_validation_checks = set()

html_theme = "pydata_sphinx_theme"
html_title = f"fastloss {release}"
html_static_path = ["_static"]
html_theme_options = {
    "navigation_depth": 2,
    "show_toc_level": 2,
    "navbar_end": ["navbar-icon-links"],
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version"],
    "secondary_sidebar_items": ["page-toc"],
}
html_sidebars = {"**": ["sidebar-nav-bs"]}
html_last_updated_fmt = "%Y-%m-%d"

# workflow pages listed in index.md's toctree that other changes add: dropped from the
# toctree while their file does not exist (every other missing page stays an error)
LATE_PAGES = ("estimators", "boosting")


ASV_HTML = os.path.join(os.path.dirname(HERE), "asv_bench", "html")


def _asv_link(app, docname, source):
    """performance.md links the published asv history when ``asv publish`` has run."""
    if docname != "performance":
        return
    if os.path.exists(os.path.join(ASV_HTML, "index.html")):
        link = ("The history published with this build: "
                "<a href=\"asv/index.html\">asv results</a>.")
    else:
        link = "(No published history was present when this site was built.)"
    source[0] = source[0].replace("{{ASV_LINK}}", link)


def _copy_asv(app, exc):
    import shutil
    if exc is None and app.builder.format == "html" and os.path.isdir(ASV_HTML):
        shutil.copytree(ASV_HTML, os.path.join(app.outdir, "asv"), dirs_exist_ok=True)


def _drop_late_pages(app, docname, source):
    if docname != "index":
        return
    missing = [p for p in LATE_PAGES
               if not any(os.path.exists(os.path.join(app.srcdir, p + ext)) for ext in (".md", ".rst"))]
    source[0] = "\n".join(line for line in source[0].split("\n") if line.strip() not in missing)

# plain-text docstrings use |x| for absolute values and norms; reStructuredText reads
# |...| as a substitution. Escape bars outside math blocks, inline literals and roles.
import re  # noqa: E402

_SPAN = re.compile(r"(``.*?``|:math:`[^`]*`|`[^`]*`)")


def _escape_bars(app, what, name, obj, options, lines):
    in_math, indent = False, 0
    for i, line in enumerate(lines):
        stripped = line.lstrip()
        lead = len(line) - len(stripped)
        if in_math:
            if stripped and lead <= indent:
                in_math = False
            else:
                continue
        if stripped.startswith(".. math::"):
            in_math, indent = True, lead
            continue
        if "|" not in line or stripped.startswith(">>>"):
            continue
        parts = _SPAN.split(line)
        lines[i] = "".join(p if j % 2 else re.sub(r"(?<!\\)\|", r"\\|", p)
                           for j, p in enumerate(parts))


_SKLEARN_REQUEST = re.compile(r"set_\w+_request$")


def _skip_foreign(app, what, name, obj, skip, options):
    """Leave out scikit-learn's generated metadata-routing methods (set_fit_request, ...)
    and members inherited from scikit-learn: their docstrings are scikit-learn's."""
    if _SKLEARN_REQUEST.match(name):
        return True
    mod = getattr(obj, "__module__", None) or ""
    if mod.startswith("sklearn."):
        return True
    return None


def setup(app):
    app.connect("autodoc-skip-member", _skip_foreign)
    app.connect("autodoc-process-docstring", _escape_bars, priority=900)
    app.connect("source-read", _drop_late_pages)
    app.connect("source-read", _asv_link)
    app.connect("build-finished", _copy_asv)
    app.add_css_file("fastloss.css")
