#!/usr/bin/env python3
"""Compares one pass's differences from the baseline with the accepted list.

Usage: compare.py ACCEPTED PASS REGRESSION_DIFFS OBSERVED_OUT

REGRESSION_DIFFS is pg_regress's regression.diffs of the pass, whose expected
output was the baseline's. For each test, its changed lines (those starting
with + or -, in order, without the diff's headers and context) are
normalized and must equal the lines of the entry for that test and pass in
ACCEPTED; a test that changed without an entry fails, and so does an entry of
this pass whose test did not change (the list says what differs, no more).

ACCEPTED holds entries of this form; lines starting with # and blank lines
outside the diff lines are ignored:

    === <test> <pass> [<pass>...]
    why: <reason, one or more why: lines>
    -<a line of the baseline's output>
    +<a line of the pass's output>

Normalized: numbers of five or more digits (object identifiers, which follow
the extension's object count) become <n>, trailing blanks go.

OBSERVED_OUT receives this pass's differences in the same format (with the
accepted reasons where the test has an entry), to review and copy.
"""
import os
import re
import sys

BIG_NUMBER = re.compile(r"\b\d{5,}\b")
DIFF_HEADER = re.compile(r"^diff .* \S+/expected/(\S+?)(_\d)?\.out \S+/results/(\S+)\.out$")


def normalize(line):
    return BIG_NUMBER.sub("<n>", line).rstrip()


def read_accepted(path):
    entries = {}  # (test, pass) -> (why lines, diff lines)
    current = None
    with open(path, encoding="utf-8") as f:
        for n, raw in enumerate(f, 1):
            line = raw.rstrip("\n")
            if line.startswith("=== "):
                words = line[4:].split()
                if len(words) < 2:
                    sys.exit(f"{path}:{n}: an entry needs a test and at least one pass")
                current = ([], [])
                for p in words[1:]:
                    if (words[0], p) in entries:
                        sys.exit(f"{path}:{n}: a second entry for {words[0]} in pass {p}")
                    entries[(words[0], p)] = current
            elif line.startswith("why:"):
                if current is None:
                    sys.exit(f"{path}:{n}: why: outside an entry")
                current[0].append(line)
            elif line.startswith("+") or line.startswith("-"):
                if current is None:
                    sys.exit(f"{path}:{n}: a diff line outside an entry")
                current[1].append(normalize(line))
            elif line.strip() == "" or line.startswith("#"):
                continue
            else:
                sys.exit(f"{path}:{n}: not an entry line: {line!r}")
    for (test, p), (why, _) in entries.items():
        if not why:
            sys.exit(f"{path}: the entry for {test} (pass {p}) gives no reason")
    return entries


def read_diffs(path):
    diffs = {}  # test -> changed lines
    test = None
    with open(path, encoding="utf-8", errors="replace") as f:
        for raw in f:
            line = raw.rstrip("\n")
            m = DIFF_HEADER.match(line)
            if m:
                test = m.group(3)
                diffs.setdefault(test, [])
                continue
            if test is None or line.startswith("--- ") or line.startswith("+++ "):
                continue
            if line.startswith("+") or line.startswith("-"):
                diffs[test].append(normalize(line))
    return {t: lines for t, lines in diffs.items() if lines}


def main():
    accepted_path, pass_name, diffs_path, observed_path = sys.argv[1:5]
    accepted = read_accepted(accepted_path)
    try:
        observed = read_diffs(diffs_path)
    except FileNotFoundError:
        observed = {}
    failures = []
    with open(observed_path, "w", encoding="utf-8") as out:
        for test in sorted(observed):
            entry = accepted.get((test, pass_name))
            out.write(f"=== {test} {pass_name}\n")
            out.write("\n".join(entry[0]) + "\n" if entry else "why: NOT EXPLAINED\n")
            out.write("\n".join(observed[test]) + "\n\n")
            if entry is None:
                failures.append(f"{test}: differs from the baseline, and {os.path.basename(accepted_path)} has no entry "
                                f"for it in pass {pass_name}:\n" + "\n".join(observed[test][:60]))
            elif entry[1] != observed[test]:
                import difflib
                d = difflib.unified_diff(entry[1], observed[test], "accepted", "observed", lineterm="", n=1)
                failures.append(f"{test}: differs from the baseline otherwise than accepted (pass {pass_name}):\n"
                                + "\n".join(list(d)[:80]))
    for (test, p) in sorted(accepted):
        if p == pass_name and test not in observed:
            failures.append(f"{test}: {os.path.basename(accepted_path)} lists a difference in pass {p} "
                            "that no longer occurs")
    for f in failures:
        print(f"FAIL: pass {pass_name}: {f}")
    print(f"pass {pass_name}: {len(observed)} tests differ from the baseline; {len(failures)} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
