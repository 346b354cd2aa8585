#!/bin/bash
# The documentation's walkthroughs are tests (test/docs/extract.py): fails when
# a walkthrough's SQL block has no test marker, when sql/doc_*.sql is not what
# the page says (a doc change without regenerating), or when a result the page
# shows is not in expected/doc_*.out. pg_regress then runs sql/doc_*.sql
# (regress.doc_*), so a code change that makes a page wrong fails there.
cd "$(dirname "$0")/../.."
exec /usr/bin/python3 test/docs/extract.py --check
