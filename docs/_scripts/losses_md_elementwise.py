"""Regenerate the elementwise rows and sections of docs/losses.md from fastloss.LOSSES.

Run from the repository root: ``python docs/_scripts/losses_md_elementwise.py > /tmp/l.md``
and copy the result over docs/losses.md.  The elementwise table rows (name, inputs,
parameters with defaults, differentiable inputs, Hessian, plain-text formula) and their
sections (the math function's docstring) are rebuilt in registry order; every other row
and section (row-wise, CTC) is kept as it is.  Reports on stderr which existing entries
changed.
"""
import re
import sys

import fastloss
from fastloss._math.spec import ELEMENTWISE, ELEMENTWISE3

text = open("docs/losses.md").read()
head, rest = text.split("| loss | kind |", 1)
lines = ("| loss | kind |" + rest).split("\n")
table = []
i = 0
while lines[i].startswith("|"):
    table.append(lines[i]); i += 1
after = "\n".join(lines[i:])
def row(name):
    info = fastloss.LOSSES[name]
    ps = ", ".join(f"`{k}={v!r}`" for k, v in info.params.items())
    f = info.formula.replace("|", "&#124;")
    return (f"| `{name}` | elementwise | {', '.join(info.inputs)} | {ps} | "
            f"{', '.join(info.differentiable)} | {'yes' if info.has_hessian else '—'} | {f} |")
def section(name):
    return f"## `{name}`\n\n{fastloss.LOSSES[name].doc.strip()}\n"
ew = list(ELEMENTWISE) + list(ELEMENTWISE3)   # (three arrays: gaussian_nll, ...)
old_rows = {r.split("|")[1].strip().strip("`"): r for r in table[2:]}
mismatch = [n for n in ew if n in old_rows and old_rows[n] != row(n)]
print("existing rows reproduced differently:", mismatch, file=sys.stderr)
other = [r for r in table[2:] if r.split("|")[1].strip().strip("`") not in ew]
new_table = table[:2] + [row(n) for n in ew] + other
# sections: split on '## `'
parts = re.split(r"(?m)^(?=## `)", after)
pre, secs = parts[0], parts[1:]
secmap = {re.match(r"## `([^`]+)`", s).group(1): s for s in secs}
for n in ew:
    if n in secmap and secmap[n].strip() != section(n).strip():
        print("section differs:", n, file=sys.stderr)
out_secs = [section(n) + "\n" for n in ew] + [s for k, s in secmap.items() if k not in ew]
res = head + "\n".join(new_table) + "\n" + pre + "".join(out_secs)
sys.stdout.write(res.rstrip("\n") + "\n")
