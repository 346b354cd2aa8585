#!/usr/bin/env python3
"""Adds the end-of-data marker after in-line COPY ... FROM STDIN commands of
PostgreSQL's regression suite that fail before any data is sent.

psql skips the in-line data of a COPY ... FROM STDIN that fails before the
server enters COPY mode, up to the next line holding only a backslash and a
period (a security fix of psql, in minor releases since mid-2026); the suite
of the same minor release carries such a line after every failing COPY that
has no data. An older minor release's suite lacks them, and a newer psql
would then swallow the rest of the file up to the next COPY's data. Which
COPY commands failed without data is read off the expected output: psql
echoes every line it runs as SQL, so the line after such a COPY (blank lines
are not echoed) comes right after the COPY's error in the expected output.

Usage: copy_terminators.py SUITE_DIR   (edits SUITE_DIR/sql/*.sql in place;
prints one line per marker added; adding none is fine).
"""
import os
import re
import sys

COPY_LINE = re.compile(r"^\s*copy\b.*\bfrom\s+stdin\b.*;\s*(--.*)?$", re.IGNORECASE)
ERROR_LINE = re.compile(r"^(ERROR|DETAIL|HINT|CONTEXT|WARNING|NOTICE):|^LINE \d+:|^\s*\^\s*$")


def fix(sql_path, out_path):
    with open(sql_path, encoding="utf-8", errors="surrogateescape") as f:
        sql = f.read().split("\n")
    with open(out_path, encoding="utf-8", errors="surrogateescape") as f:
        out = f.read().split("\n")
    added = []
    result = []
    at = 0  # position in the expected output
    for i, line in enumerate(sql):
        result.append(line)
        if not COPY_LINE.match(line):
            continue
        j = i + 1
        while j < len(sql) and sql[j].strip() == "":
            j += 1
        if j >= len(sql) or sql[j].strip() == "\\.":
            continue
        try:
            k = out.index(line, at)
        except ValueError:
            continue
        at = k + 1
        while at < len(out) and ERROR_LINE.match(out[at]):
            at += 1
        if at > k + 1 and at < len(out) and out[at] == sql[j]:
            result.append("\\.")
            added.append(i + 1)
    if added:
        with open(sql_path, "w", encoding="utf-8", errors="surrogateescape") as f:
            f.write("\n".join(result))
    return added


def main():
    suite = sys.argv[1]
    for name in sorted(os.listdir(os.path.join(suite, "sql"))):
        if not name.endswith(".sql"):
            continue
        test = name[:-4]
        out = os.path.join(suite, "expected", test + ".out")
        if not os.path.exists(out):
            continue
        for line in fix(os.path.join(suite, "sql", name), out):
            print(f"{test}.sql:{line}: end-of-data marker added after a COPY that fails without data")


if __name__ == "__main__":
    main()
