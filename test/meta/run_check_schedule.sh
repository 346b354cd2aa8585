#!/bin/bash
# Fails when a sql/*.sql file is not listed in ./schedule or lacks expected/*.out,
# or when an alternative expected file (expected/<name>_N.out, another major's
# output) has no sql/<name>.sql.
cd "$(dirname "$0")/../.."
rc=0
for f in sql/*.sql; do
	t=$(basename "$f" .sql)
	grep -qx "test: $t" schedule || { echo "sql/$t.sql is not in schedule"; rc=1; }
	[ -f "expected/$t.out" ] || { echo "expected/$t.out is missing"; rc=1; }
done
for f in expected/*_[0-9].out; do
	[ -e "$f" ] || continue
	t=$(basename "$f" .out); t=${t%_[0-9]}
	[ -f "sql/$t.sql" ] || { echo "$f has no sql/$t.sql"; rc=1; }
done
exit $rc
