#!/usr/bin/env python3
"""The documentation's walkthroughs as pg_regress files.

Each page listed in PAGES has sections (by heading) whose ```sql blocks are the
walkthrough. Every such block is preceded by one marker line:

    <!-- test: as ROLE -->           run it, in a new session of ROLE
    <!-- test -->                    run it in the session of the block before
    <!-- untested: REASON -->        not run, and the reason says why

`ROLE` is `superuser` (the role pg_regress connects as) or a role the page
creates. Role names the page lists in `<!-- test-roles: a b -->` are renamed
`regress_<name>_a`, ... in the generated file (roles are shared by the whole
cluster; tests name theirs regress_*). The page's test file is
sql/doc_<name>.sql, with test/docs/<name>.pre.sql and .post.sql (setup the page
does not show, and the clean-up) around the blocks. Nothing else of the text is
changed: the statements run as they are written.

A block's documented results are its comment lines that show psql output:
`-- ERROR:  ...`, `-- NOTICE:  ...` (also WARNING, DETAIL, HINT) and table
lines (`--  col`, `-- -----`, `--   42`). Each must appear, as a line, in
expected/doc_<name>.out: the documentation cannot show a result the test does
not produce.

    python3 test/docs/extract.py --write    regenerate sql/doc_*.sql
    python3 test/docs/extract.py --check    fail when a generated file is stale,
                                            a block has no marker, or a
                                            documented result is not in the
                                            expected output
"""
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]

# page, test name, headings whose sections are the walkthrough (prefix match;
# a section ends at the next heading of the same or a higher level)
PAGES = [
    ("README.md", "readme", ["## Five-minute walkthrough"]),
    ("docs/protecting-a-schema.md", "protecting", ["# Protecting a schema"]),
    ("docs/audit.md", "audit", ["## Getting started"]),
    ("docs/lifecycle.md", "lifecycle", ["## Getting started"]),
    ("docs/support-access.md", "support", ["## Getting started"]),
    ("docs/encryption.md", "encryption", ["## Getting started"]),
    ("docs/key-management.md", "keys", ["## Getting started"]),
]

MARK = re.compile(r"^<!--\s*(test(?::\s*as\s+(\S+))?|untested:\s*(.+?))\s*-->\s*$")
ROLES = re.compile(r"^<!--\s*test-roles:\s*(.*?)\s*-->\s*$")
SHOWN = re.compile(r"^--\s(?:(?:ERROR|WARNING|NOTICE|DETAIL|HINT):\s.*|\s.*|-{3,}.*)$")


class Fail(Exception):
    pass


def sections(lines, headings):
    """Line ranges [start, end) of the named sections."""
    out = []
    for i, line in enumerate(lines):
        for h in headings:
            if line.rstrip() == h or line.startswith(h + " "):
                level = len(h) - len(h.lstrip("#"))
                end = len(lines)
                for j in range(i + 1, len(lines)):
                    m = re.match(r"^(#+)\s", lines[j])
                    if m and len(m.group(1)) <= level:
                        end = j
                        break
                out.append((i, end))
    return out


def blocks(page, headings):
    """(line number, marker, role, sql text) of every ```sql block in the sections."""
    lines = (ROOT / page).read_text().split("\n")
    ranges = sections(lines, headings)
    if not ranges:
        raise Fail(f"{page}: no section {headings}")
    found = []
    for start, end in ranges:
        i = start
        while i < end:
            if lines[i].strip() == "```sql":
                j = i + 1
                while j < len(lines) and lines[j].strip() != "```":
                    j += 1
                k = i - 1
                while k > start and lines[k].strip() == "":
                    k -= 1
                m = MARK.match(lines[k].strip())
                if not m:
                    raise Fail(f"{page}:{i + 1}: sql block without a <!-- test: as ROLE --> or <!-- untested: why --> marker")
                kind = "untested" if m.group(3) else "test"
                found.append((i + 1, kind, m.group(2), "\n".join(lines[i + 1:j])))
                i = j
            i += 1
    roles = []
    for line in lines:
        m = ROLES.match(line.strip())
        if m:
            roles += m.group(1).split()
    return found, roles


def rename(text, roles, prefix):
    for r in roles:
        text = re.sub(r"(?<![\w$.])" + re.escape(r) + r"(?![\w$@])", "regress_" + prefix + "_" + r, text)
    return text


def generate(page, name, headings):
    found, roles = blocks(page, headings)
    out = [f"-- Generated from {page} by test/docs/extract.py; do not edit: change the page, then run",
           "-- python3 test/docs/extract.py --write. Each block runs as the role its marker names.",
           "SELECT current_user AS doc_superuser \\gset"]
    pre = ROOT / "test/docs" / f"{name}.pre.sql"
    post = ROOT / "test/docs" / f"{name}.post.sql"
    if pre.exists():
        out += [f"-- setup the page does not show (test/docs/{pre.name})", pre.read_text().rstrip("\n")]
    shown = []
    tested = untested = 0
    for n, (line, kind, role, sql) in enumerate(found, 1):
        if kind == "untested":
            untested += 1
            continue
        tested += 1
        out.append(f"-- {page}, block {n}")
        if role == "superuser":
            out.append("\\c - :doc_superuser")
        elif role:
            out.append(f"\\c - {rename(role, roles, name)}")
        out.append(rename(sql, roles, name))
        shown += [rename(l.strip(), roles, name) for l in sql.split("\n") if SHOWN.match(l.strip())]
    out.append("-- clean-up")
    out.append("\\c - :doc_superuser")
    if post.exists():
        out.append(post.read_text().rstrip("\n"))
    return "\n".join(out) + "\n", shown, tested, untested


def main():
    mode = sys.argv[1] if len(sys.argv) > 1 else "--check"
    problems = []
    for page, name, headings in PAGES:
        if not (ROOT / page).exists():
            problems.append(f"{page}: missing")
            continue
        try:
            text, shown, tested, untested = generate(page, name, headings)
        except Fail as e:
            problems.append(str(e))
            continue
        target = ROOT / "sql" / f"doc_{name}.sql"
        if mode == "--write":
            target.write_text(text)
            print(f"{target.relative_to(ROOT)}: {tested} blocks run, {untested} not run")
            continue
        if not target.exists() or target.read_text() != text:
            problems.append(f"{target.relative_to(ROOT)} is not what {page} says: run python3 test/docs/extract.py --write")
        expected = ROOT / "expected" / f"doc_{name}.out"
        got = set()
        if expected.exists():
            got = {l.rstrip() for l in expected.read_text().split("\n")}
        for s in shown:
            want = s[3:].rstrip()
            if want not in got:
                problems.append(f"{page}: documented result not in expected/doc_{name}.out: {want!r}")
        print(f"{page}: {tested} blocks run, {untested} not run, {len(shown)} documented result lines checked")
    for p in problems:
        print("FAIL: " + p)
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
