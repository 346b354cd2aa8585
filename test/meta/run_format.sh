#!/bin/bash
# Fails when a C++ file of the tree is not formatted as .clang-format says
# (scripts/format.sh --check names each one; scripts/format.sh fixes them).
exec bash "$(dirname "$0")/../../scripts/format.sh" --check
