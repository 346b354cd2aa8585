#!/bin/bash
# Fails when a sql/*.sql file is not listed in ./schedule or lacks expected/*.out.
cd "$(dirname "$0")/../.."
rc=0
for f in sql/*.sql; do
	t=$(basename "$f" .sql)
	grep -qx "test: $t" schedule || { echo "sql/$t.sql is not in schedule"; rc=1; }
	[ -f "expected/$t.out" ] || { echo "expected/$t.out is missing"; rc=1; }
done
exit $rc
