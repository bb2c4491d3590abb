#!/usr/bin/env bash
# clang-tidy over every shardgate source (the repo's .clang-tidy), with the compile commands of
# a configured build (default: build). Part of the test command: any warning fails it.
# Usage: scripts/tidy.sh [build dir]
set -euo pipefail
cd "$(dirname "$0")/.."
build="${1:-build}"
[ -f "$build/compile_commands.json" ] || { echo "tidy: no $build/compile_commands.json (configure first)" >&2; exit 1; }
runner=$(command -v run-clang-tidy-14 || command -v run-clang-tidy || true)
[ -n "$runner" ] || { echo "tidy: run-clang-tidy not found (clang-tidy package)" >&2; exit 1; }
out=$(mktemp)
trap 'rm -f "$out"' EXIT
status=0
# Boost 1.74 only looks for Clang's coroutines in libc++: tell it libstdc++ has them, or every
# awaitable fails to compile under clang-tidy.
"$runner" -p "$build" -j "$(nproc)" -quiet \
  -extra-arg=-DBOOST_ASIO_HAS_CO_AWAIT -extra-arg=-DBOOST_ASIO_HAS_STD_COROUTINE \
  "$PWD/(protocol|router|pool|shardmap|proxy)/src/.*\.cpp" >"$out" 2>&1 || status=$?
if [ "$status" != 0 ] || grep -q "warning:\|error:" "$out"; then
  grep -E "warning:|error:" -A3 "$out" | sed 's/\x1b\[[0-9;]*m//g' >&2 || cat "$out" >&2
  echo "tidy: clang-tidy found problems (see above)" >&2
  exit 1
fi
echo "tidy: clean ($(grep -c '"file"' "$build/compile_commands.json") compile commands, sources of protocol, router, pool, proxy)"
