#!/usr/bin/env bash
# The module boundaries of ../shared/DESIGN.md, checked on what the compiler actually includes:
# protocol/, router/ (and shardmap/ once it exists) and proxy/src/core/ do no I/O, so none of
# their files may pull in Asio, Beast or a socket, epoll or network header, directly or through
# another header; the core also reads no clock (it is given the time in its events).
# Usage: layering_check.sh [c++ compiler]
set -euo pipefail
cd "$(dirname "$0")/../.."
cxx="${1:-c++}"
forbidden='boost/asio|boost/beast|/sys/socket\.h|/netinet/|/arpa/inet\.h|/sys/epoll\.h|/netdb\.h|/openssl/ssl\.h'
incs=(-Iprotocol/include -Irouter/include -Ipool/include -Iproxy/src)
[ -d shardmap/include ] && incs+=(-Ishardmap/include)
failed=0
files=()
for dir in protocol router shardmap proxy/src/core; do
  [ -d "$dir" ] || continue
  while IFS= read -r f; do files+=("$f"); done < <(find "$dir" -name '*.cpp' -o -name '*.hpp' | sort)
done
[ ${#files[@]} -gt 0 ] || { echo "layering_check: no files found" >&2; exit 1; }
for f in "${files[@]}"; do
  deps=$("$cxx" -std=c++20 -M -x c++ "${incs[@]}" "$f" 2>&1) || {
    echo "layering_check: cannot preprocess $f:" >&2
    echo "$deps" | head -5 >&2
    failed=1
    continue
  }
  bad=$(echo "$deps" | tr ' \\' '\n\n' | grep -E "$forbidden" | sort -u || true)
  if [ -n "$bad" ]; then
    echo "layering_check: $f does I/O-side includes:" >&2
    echo "$bad" | sed 's/^/  /' >&2
    failed=1
  fi
done
# The session core is told the time; it never asks a clock.
clock=$(grep -nE '(steady_clock|system_clock|high_resolution_clock)::now|\bsteady::now|time\(nullptr\)' \
  $(find proxy/src/core -name '*.cpp' -o -name '*.hpp') || true)
if [ -n "$clock" ]; then
  echo "layering_check: proxy/src/core reads a clock:" >&2
  echo "$clock" | sed 's/^/  /' >&2
  failed=1
fi
# The rest of proxy/ reaches the session's protocol state through the core (txn_core.hpp,
# fanout.hpp), never through its parts: the statement channel and the settings are the core's.
bypass=$(grep -nE '#include "core/(statement_mux|session_settings)\.hpp"' \
  $(find proxy/src -path proxy/src/core -prune -o \( -name '*.cpp' -o -name '*.hpp' \) -print) || true)
if [ -n "$bypass" ]; then
  echo "layering_check: proxy/ code includes the session core's parts directly:" >&2
  echo "$bypass" | sed 's/^/  /' >&2
  failed=1
fi
if [ "$failed" = 0 ]; then echo "layering_check: ${#files[@]} files of protocol/, router/, core/ are free of I/O; proxy/ goes through the core"; fi
exit "$failed"
