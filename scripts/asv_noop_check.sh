#!/usr/bin/env bash
# A no-op comparison must report no change: the same code is benchmarked twice by asv,
# recorded under two commit hashes, and `asv compare --factor F` must mark no row as
# changed: its Change column holds "+" (slower beyond F, significant), "-" (faster) or "x"
# (failed) for such rows, and is empty or "~" (not significant) otherwise.
#
#   scripts/asv_noop_check.sh [BENCH_REGEX] [FACTOR]      # defaults: Quick 1.1
#   ROUNDS=6 (default): processes per run, interleaved between the two runs
#
# Uses the current environment's Python (asv run --python=same; fastloss importable from
# it) and the working tree's code for both runs; the two runs are labelled HEAD~1 and HEAD
# only so that asv compare can name them (results go to a temporary results directory).
# Needs a quiet machine: on a loaded one, timings drift by more than 10 %.
set -euo pipefail
BENCH="${1:-Quick}"
FACTOR="${2:-1.1}"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT/asv_bench"
A="$(git rev-parse HEAD~1)"
B="$(git rev-parse HEAD)"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP" "$ROOT/asv_bench/.asv-noop.json"' EXIT
python - "$TMP" <<'PY'
import json, sys
c = json.load(open("asv.conf.json"))
c["results_dir"] = sys.argv[1] + "/results"
c["html_dir"] = sys.argv[1] + "/html"
json.dump(c, open(".asv-noop.json", "w"), indent=1)
PY
CONF=(--config .asv-noop.json)
asv machine --yes "${CONF[@]}" >/dev/null
# the rounds of the two runs interleaved (A B A B ...: one process each, samples appended),
# so that a drift of the machine over minutes falls on both alike, as in
# `asv continuous --interleave-rounds`
ROUNDS="${ROUNDS:-6}"
for ((r = 0; r < ROUNDS; r++)); do
  for H in "$A" "$B"; do
    asv run "${CONF[@]}" --python=same --set-commit-hash "$H" -b "$BENCH" -a rounds=1 \
      --append-samples --show-stderr >/dev/null
  done
done
OUT="$(asv compare "${CONF[@]}" --factor "$FACTOR" "$A" "$B")"
echo "$OUT"
if grep -Eq '^\| *[-+x] *\|' <<<"$OUT"; then
  echo "asv_noop_check: FAILED: the same code compared as changed (factor $FACTOR)" >&2
  exit 1
fi
echo "asv_noop_check: ok: no change reported between two runs of the same code (factor $FACTOR)"
