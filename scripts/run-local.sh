#!/usr/bin/env bash
# The README's "run the main job" command: builds shardgate and starts a local topology behind it
# (2 shards, each a primary + 1 replica; Ctrl-C tears everything down). Arguments go to sg-local,
# e.g. `--smoke` (exit after one query through the proxy), `--shards 3`, `--port 6432`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSHARDGATE_TESTS=ON >/dev/null
cmake --build build -j "$(nproc)" --target sg-local shardgate
exec build/tests/support/sg-local "$@"
