"""Reads a `deno test` log and prints a /^(…)$/ filter matching the names of
the tests that failed, for one more run. Prints nothing when no test failed
by name (an uncaught error fails a whole file: that is not run again).
"""
import re
import sys

text = re.sub(r"\x1b\[[0-9;]*m", "", open(sys.argv[1], encoding="utf-8", errors="replace").read())
failures = text.split("\n FAILURES \n", 1)
if len(failures) < 2:
    sys.exit(0)
names = []
for line in failures[1].splitlines():
    m = re.match(r"^(.*) => \./tests/[^:]+:\d+:\d+$", line)
    if m:
        names.append(m.group(1))
if names:
    print("/^(" + "|".join(re.escape(n).replace("/", "\\/") for n in dict.fromkeys(names)) + ")$/")
