#!/bin/bash
# Formats the C++ sources with clang-format and .clang-format, or with
# --check only reports the files that differ (exit 1). The files: src/, and
# the unit tests and fuzz targets under test/.
#
# Usage: bash scripts/format.sh [--check]
# CLANG_FORMAT overrides the binary (default clang-format-14, as Debian 12
# ships it, else clang-format): another major formats some lines differently.
set -euo pipefail
cd "$(dirname "$0")/.."
cf=${CLANG_FORMAT:-$(command -v clang-format-14 || command -v clang-format || true)}
if [ -z "$cf" ]; then
	echo "format.sh: clang-format is not installed (Debian: apt-get install clang-format)" >&2
	exit 2
fi
mapfile -t files < <(git ls-files -- 'src/*.cpp' 'src/*.hpp' 'test/unit/*.cpp' 'test/unit/*.hpp' 'test/fuzz/*.cpp' \
	2>/dev/null || find src test/unit test/fuzz -name '*.cpp' -o -name '*.hpp')
if [ "${1:-}" = --check ]; then
	bad=0
	for f in "${files[@]}"; do
		if ! "$cf" --style=file "$f" | cmp -s - "$f"; then
			echo "not formatted: $f (bash scripts/format.sh)"
			bad=1
		fi
	done
	[ "$bad" -eq 0 ] && echo "formatted: ${#files[@]} files ($("$cf" --version | sed 's/.*version //'))"
	exit "$bad"
fi
"$cf" --style=file -i "${files[@]}"
