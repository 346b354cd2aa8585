#!/usr/bin/env python3
"""Prints every EXPLAIN and TRUNCATE statement of PostgreSQL's regression
suite, one after the other, as a psql script.

These are the statements tenant_guard's ProcessUtility hook looks into. Run
alone, in a session of their own, they refer to prepared statements, cursors,
temporary tables and settings that do not exist there: the forms a hook must
meet with PostgreSQL's own error (EXPLAIN ANALYZE EXECUTE of a prepared
statement that does not exist once crashed the server).

A statement starts at a line that begins with EXPLAIN or TRUNCATE and ends at
the first line ending with a semicolon, at most 40 lines on; statements with
psql meta-commands or dollar quotes are left out (they belong to function
bodies and psql features, not to the statement itself).

Usage: utility_statements.py SQL_DIR > statements.sql
"""
import os
import re
import sys

START = re.compile(r"^\s*(explain|truncate)\b", re.IGNORECASE)
END = re.compile(r";\s*(--.*)?$")


def statements(path):
    with open(path, encoding="utf-8", errors="replace") as f:
        lines = f.read().split("\n")
    i = 0
    while i < len(lines):
        if START.match(lines[i]):
            for j in range(i, min(i + 40, len(lines))):
                if END.search(lines[j]):
                    stmt = "\n".join(lines[i:j + 1])
                    if "$$" not in stmt and not any(l.lstrip().startswith("\\") for l in lines[i:j + 1]):
                        yield stmt
                    i = j
                    break
        i += 1


def main():
    sql_dir = sys.argv[1]
    n = 0
    for name in sorted(os.listdir(sql_dir)):
        if name.endswith(".sql"):
            for stmt in statements(os.path.join(sql_dir, name)):
                print(stmt)
                n += 1
    print(f"-- {n} statements", file=sys.stderr)


if __name__ == "__main__":
    main()
