#!/usr/bin/env bash
# Sanitizer runs, part of the README's test command (scripts/test.sh; needs the normal build in
# build/). Any report fails it.
# - AddressSanitizer + UndefinedBehaviorSanitizer (build-asan): the unit tests, built so, and
#   every other ctest test (integration, differential) run against a shardgate built so. -O0:
#   it compiles about as fast as the normal build, and the tests wait on I/O, not on the CPU.
# - ThreadSanitizer (build-tsan, -O1): the pool's unit tests, and the pool and data-plane
#   integration tests against a shardgate built so.
# Reports go to files (log_path), one per process that had one, and are printed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)
reports=$(mktemp -d /tmp/shardgate-sanitize.XXXXXX)
trap 'rm -rf "$reports"' EXIT
unit_targets=(unit_protocol unit_router unit_pool unit_proxy)

cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O0 -g" "-DCMAKE_C_FLAGS_RELWITHDEBINFO=-O0 -g" \
  -DSHARDGATE_WERROR=OFF -DSHARDGATE_SANITIZE=address,undefined >/dev/null
cmake --build build-asan -j "$jobs" --target shardgate "${unit_targets[@]}"
(
  export ASAN_OPTIONS="log_path=$reports/asan:detect_leaks=1:quarantine_size_mb=32"
  export UBSAN_OPTIONS="log_path=$reports/ubsan:print_stacktrace=1:halt_on_error=1"
  for t in "${unit_targets[@]}"; do
    build-asan/tests/"$t"
  done
  # Resident-memory bounds and similar checks relax for a sanitized shardgate (its shadow
  # memory and quarantine are not shardgate's).
  SHARDGATE_BINARY="$PWD/build-asan/proxy/shardgate" SHARDGATE_SANITIZED=1 \
    ctest --test-dir build --output-on-failure --timeout 900 -j "$jobs" -E '^unit_'
)

cmake -S . -B build-tsan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -g" "-DCMAKE_C_FLAGS_RELWITHDEBINFO=-O1 -g" \
  -DSHARDGATE_WERROR=OFF -DSHARDGATE_SANITIZE=thread >/dev/null
cmake --build build-tsan -j "$jobs" --target shardgate unit_pool
(
  export TSAN_OPTIONS="log_path=$reports/tsan:halt_on_error=0:second_deadlock_stack=1"
  build-tsan/tests/unit_pool
  SHARDGATE_BINARY="$PWD/build-tsan/proxy/shardgate" SHARDGATE_SANITIZED=1 \
    ctest --test-dir build --output-on-failure --timeout 900 -j "$jobs" \
    -R '^integration_(pool|txn_pool|session|lifecycle|limits|temp_schema|read_split_pools)_test'
)

if compgen -G "$reports/*" >/dev/null; then
  for f in "$reports"/*; do
    echo "==== sanitizer report $(basename "$f")"
    cat "$f"
  done
  echo "sanitize.sh: sanitizer reports (above)" >&2
  exit 1
fi
echo "sanitize.sh: no sanitizer report (ASan/UBSan: unit tests and every ctest test; TSan: pool unit tests and the pool and data-plane integration tests)"
