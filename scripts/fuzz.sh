#!/usr/bin/env bash
# Runs every libFuzzer target in BUILD_DIR for $FUZZ_SECONDS (default 60) seconds each, seeded
# from tests/fuzz/corpus/<target>/; prints each target's executions; exits non-zero on a crash.
# Usage: scripts/fuzz.sh BUILD_DIR   (configured with -DSHARDGATE_FUZZ=ON and clang)
set -euo pipefail
build=$(cd "${1:?usage: scripts/fuzz.sh BUILD_DIR}" && pwd)
seconds=${FUZZ_SECONDS:-60}
root=$(cd "$(dirname "$0")/.." && pwd)

mapfile -t targets < <(find "$build/tests/fuzz" -maxdepth 1 -type f -name 'fuzz_*' -perm -u+x \
  2>/dev/null | sort)
if [ ${#targets[@]} -eq 0 ]; then
  echo "fuzz.sh: no fuzz targets under $build/tests/fuzz (build with -DSHARDGATE_FUZZ=ON)" >&2
  exit 1
fi

failed=0
for bin in "${targets[@]}"; do
  name=$(basename "$bin")
  corpus="$build/fuzz-corpus/$name"      # grows across runs; new inputs land here
  artifacts="$build/fuzz-artifacts/$name"
  log="$build/fuzz-logs/$name.log"
  mkdir -p "$corpus" "$artifacts" "$(dirname "$log")"
  dirs=("$corpus")
  [ -d "$root/tests/fuzz/corpus/$name" ] && dirs+=("$root/tests/fuzz/corpus/$name")
  status=0
  "$bin" -max_total_time="$seconds" -print_final_stats=1 -timeout=10 -rss_limit_mb=2048 \
    -artifact_prefix="$artifacts/" "${dirs[@]}" >"$log" 2>&1 || status=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  if [ "$status" -ne 0 ]; then
    failed=1
    echo "$name: FAILED (exit $status) after ${execs:-?} executions; log: $log" >&2
    grep -E 'ERROR|SUMMARY|Test unit written|deadly signal' "$log" | head -n 20 >&2 || true
  else
    echo "$name: ${execs:-?} executions in ${seconds}s, no crash"
  fi
done
exit "$failed"
