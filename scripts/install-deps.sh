#!/usr/bin/env bash
# Installs everything shardgate needs to build, test and benchmark, from Debian 12 packages only.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

pkgs=(
  build-essential cmake ninja-build pkg-config git
  clang clang-format clang-tidy libclang-rt-14-dev
  libboost-dev libssl-dev openssl
  libpq-dev libpqxx-dev libxxhash-dev libtomlplusplus-dev doctest-dev
  libpg-query-dev libprotobuf-c-dev libspdlog-dev libfmt-dev libcli11-dev libbenchmark-dev
  postgresql-15 postgresql-client-15 postgresql-contrib
  pgbouncer pgpool2
  # Real Python drivers for the prepared-statement client test (psycopg 3, asyncpg)
  python3-psycopg python3-asyncpg
  # The real JDBC driver (pgjdbc) for the JDBC prepared-statement client test; a JDK, not a JRE:
  # the test runs its client with Java's single-file source launcher
  default-jdk-headless libpostgresql-jdbc-java
  procps iproute2 util-linux
)

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  # Package maintainer scripts must not start system services (Postgres, PgBouncer, pgpool):
  # shardgate's tools start their own servers on free loopback ports.
  policy_created=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
    $SUDO chmod +x /usr/sbin/policy-rc.d
    policy_created=1
  fi
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
  if [ "$policy_created" = 1 ]; then $SUDO rm -f /usr/sbin/policy-rc.d; fi
fi
