#!/usr/bin/env bash
# The README's test command: installs dependencies, builds, checks formatting and clang-tidy,
# runs every test (unit, integration, differential, fuzz smoke runs, the layering check), then
# again with sanitizers: unit tests built with
# AddressSanitizer + UndefinedBehaviorSanitizer and every ctest test run against a shardgate
# built so, and the pool and data-plane tests against a ThreadSanitizer shardgate. Exits
# non-zero on any failure or sanitizer report. SANITIZERS=0 skips the sanitizer runs.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
jobs=$(nproc)
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j "$jobs"
# Formatting is part of the test: the tree must match the repo's clang-format.
bash scripts/check-format.sh
# So is clang-tidy (.clang-tidy; any warning fails).
bash scripts/tidy.sh build
ctest --test-dir build --output-on-failure --timeout 900 -j "$jobs"
if [ -f tests/fuzz/CMakeLists.txt ]; then
  cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=clang++ \
    -DCMAKE_C_COMPILER=clang -DSHARDGATE_FUZZ=ON >/dev/null
  cmake --build build-fuzz -j "$jobs"
  FUZZ_SECONDS="${FUZZ_SECONDS:-20}" bash scripts/fuzz.sh build-fuzz
fi
if [ "${SANITIZERS:-1}" != 0 ]; then
  bash scripts/sanitize.sh
fi
