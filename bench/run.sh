#!/usr/bin/env bash
# Reproducible benchmark: direct Postgres vs PgBouncer vs shardgate, same machine, same run.
#
# Starts its own Postgres 15, PgBouncer and shardgate on free loopback ports in a temporary
# directory, runs pgbench (select-only, one connection per client) against each target in
# interleaved rounds, measures each proxy's CPU time from /proc, prints a table of medians and
# writes it as markdown. Everything it starts is stopped and the temp dir removed on exit,
# Ctrl-C or failure. See bench/README.md.
set -euo pipefail

SCRIPT_START=$(date +%s)
REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
PGBOUNCER_BIN=${PGBOUNCER_BIN:-/usr/sbin/pgbouncer}
PY=/usr/bin/python3 # the system's python3, standard library only
PROG=run.sh
# shellcheck source=bench/lib.sh
source "$REPO_ROOT/bench/lib.sh"

usage() {
    cat <<EOF
Usage: bash bench/run.sh [options]

Options (environment variable in brackets; the option wins):
  --shardgate PATH      shardgate binary [SHARDGATE] (default: build/proxy/shardgate)
  --baseline PATH       a second shardgate binary (an older build) measured as target
                        "baseline" in the same rounds, with the same config [BASELINE]
  --pool-mode MODE      PgBouncer pool mode: session or transaction [POOL_MODE] (default: session)
  --modes "LIST"        pgbench -M protocol modes [MODES] (default: "simple extended prepared")
  --clients "LIST"      client counts [CLIENTS] (default: "1 16 64")
  --targets "LIST"      subset of "direct pgbouncer shardgate baseline" [TARGETS] (default: the
                        first three, and baseline when --baseline is given)
  --rounds N            interleaved rounds; the order of targets rotates each round [ROUNDS] (default: 3)
  --duration SECONDS    pgbench -T per run [DURATION] (default: 10)
  --scale N             pgbench -i -s [SCALE] (default: 10)
  --warmup SECONDS      one warm-up run per target before round 1, 0 = none [WARMUP] (default: 2)
  --workers N           shardgate workers (default: not set, i.e. one per core) [WORKERS]
  --data-planes N       shardgate data_planes (default: not set, i.e. cores - 1, at least 1) [DATA_PLANES]
  --latency             also record p50/p99 latency from pgbench --log files [LATENCY=1]
  --client-tls          clients reach the proxies over TLS (pgbench sslmode=require; PgBouncer
                        client_tls_sslmode = require, shardgate tls_cert_file; a self-signed
                        P-256 certificate made for the run); direct Postgres stays plain [CLIENT_TLS=1]
  --out FILE            markdown results file [OUT] (default: bench/results-<date>.md;
                        the raw per-run rows go next to it as <name>.runs.tsv)
  -h, --help            this help

Example (a quick check): DURATION=3 ROUNDS=1 bash bench/run.sh --clients 16
EOF
}

# ---------------------------------------------------------------- options
ENVS="" # the settings that came from the environment, for the record
for v in SHARDGATE BASELINE POOL_MODE MODES CLIENTS TARGETS ROUNDS DURATION SCALE WARMUP WORKERS DATA_PLANES LATENCY CLIENT_TLS OUT; do
    [[ -z ${!v+x} ]] || ENVS+="$(shell_quote "$v=${!v}") "
done
SHARDGATE=${SHARDGATE:-$REPO_ROOT/build/proxy/shardgate}
BASELINE=${BASELINE:-}
POOL_MODE=${POOL_MODE:-session}
MODES=${MODES:-simple extended prepared}
CLIENTS=${CLIENTS:-1 16 64}
TARGETS=${TARGETS:-direct pgbouncer shardgate}
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10}
SCALE=${SCALE:-10}
WARMUP=${WARMUP:-2}
WORKERS=${WORKERS:-}
DATA_PLANES=${DATA_PLANES:-}
LATENCY=${LATENCY:-0}
OUT=${OUT:-}
ORIG_ARGS=("$@")

need_arg() { [[ $# -ge 2 ]] || { echo "run.sh: $1 needs a value" >&2; exit 2; }; }
while [[ $# -gt 0 ]]; do
    case $1 in
        --shardgate) need_arg "$@"; SHARDGATE=$2; shift 2 ;;
        --baseline) need_arg "$@"; BASELINE=$2; shift 2 ;;
        --pool-mode) need_arg "$@"; POOL_MODE=$2; shift 2 ;;
        --modes) need_arg "$@"; MODES=$2; shift 2 ;;
        --clients) need_arg "$@"; CLIENTS=$2; shift 2 ;;
        --targets) need_arg "$@"; TARGETS=$2; shift 2 ;;
        --rounds) need_arg "$@"; ROUNDS=$2; shift 2 ;;
        --duration) need_arg "$@"; DURATION=$2; shift 2 ;;
        --scale) need_arg "$@"; SCALE=$2; shift 2 ;;
        --warmup) need_arg "$@"; WARMUP=$2; shift 2 ;;
        --workers) need_arg "$@"; WORKERS=$2; shift 2 ;;
        --data-planes) need_arg "$@"; DATA_PLANES=$2; shift 2 ;;
        --latency) LATENCY=1; shift ;;
        --client-tls) CLIENT_TLS=1; shift ;;
        --out) need_arg "$@"; OUT=$2; shift 2 ;;
        -h | --help) usage; exit 0 ;;
        *) echo "run.sh: unknown option '$1'" >&2; usage >&2; exit 2 ;;
    esac
done

case $POOL_MODE in session | transaction) ;; *) die "--pool-mode must be session or transaction" ;; esac
read -r -a MODE_LIST <<<"$MODES"
read -r -a CLIENT_LIST <<<"$CLIENTS"
read -r -a TARGET_LIST <<<"$TARGETS"
if [[ -n $BASELINE ]]; then
    in_list=0
    for t in "${TARGET_LIST[@]}"; do [[ $t == baseline ]] && in_list=1; done
    [[ $in_list == 1 ]] || TARGET_LIST+=(baseline)
fi
[[ ${#MODE_LIST[@]} -gt 0 && ${#CLIENT_LIST[@]} -gt 0 && ${#TARGET_LIST[@]} -gt 0 ]] ||
    die "--modes, --clients and --targets must not be empty"
for m in "${MODE_LIST[@]}"; do
    case $m in simple | extended | prepared) ;; *) die "unknown pgbench mode '$m'" ;; esac
done
for c in "${CLIENT_LIST[@]}"; do is_uint "$c" && [[ $c -ge 1 ]] || die "bad client count '$c'"; done
for t in "${TARGET_LIST[@]}"; do
    case $t in direct | pgbouncer | shardgate | baseline) ;; *) die "unknown target '$t'" ;; esac
done
for v in ROUNDS DURATION SCALE WARMUP; do is_uint "${!v}" || die "$v must be a number"; done
[[ $ROUNDS -ge 1 && $DURATION -ge 1 && $SCALE -ge 1 ]] || die "rounds, duration and scale must be >= 1"
[[ -z $WORKERS ]] || is_uint "$WORKERS" || die "--workers must be a number"
has_target() { local t; for t in "${TARGET_LIST[@]}"; do [[ $t == "$1" ]] && return 0; done; return 1; }

[[ $EUID -eq 0 ]] || die "run as root (Postgres and PgBouncer are started as the 'postgres' user via runuser)"
id postgres >/dev/null 2>&1 || die "no 'postgres' user (apt-get install postgresql-15)"
for b in initdb pg_ctl postgres psql pgbench; do
    [[ -x $PGBIN/$b ]] || die "$PGBIN/$b not found (apt-get install postgresql-15)"
done
[[ -x $PY ]] || die "$PY not found"
if has_target pgbouncer; then [[ -x $PGBOUNCER_BIN ]] || die "$PGBOUNCER_BIN not found (apt-get install pgbouncer)"; fi
if has_target baseline; then
    [[ -n $BASELINE ]] || die "target baseline needs --baseline PATH"
    [[ $BASELINE == /* ]] || BASELINE=$PWD/$BASELINE
    [[ -x $BASELINE ]] || die "baseline binary '$BASELINE' not found"
fi
if has_target shardgate; then
    [[ $SHARDGATE == /* ]] || SHARDGATE=$PWD/$SHARDGATE
    [[ -x $SHARDGATE ]] || die "shardgate binary '$SHARDGATE' not found; build it, e.g.
  cmake -S $REPO_ROOT -B $REPO_ROOT/build-bench -G Ninja && cmake --build $REPO_ROOT/build-bench --target shardgate -j2
and pass --shardgate $REPO_ROOT/build-bench/proxy/shardgate"
fi

if [[ -z $OUT ]]; then
    OUT=$REPO_ROOT/bench/results-$(date +%Y-%m-%d).md
    n=2
    while [[ -e $OUT ]]; do OUT=$REPO_ROOT/bench/results-$(date +%Y-%m-%d)-$n.md; n=$((n + 1)); done
fi
[[ $OUT == /* ]] || OUT=$PWD/$OUT
mkdir -p "$(dirname "$OUT")"
RAW=${OUT%.md}.runs.tsv

NPROC=$(nproc)
CLK_TCK=$(getconf CLK_TCK)
MAX_CLIENTS=0
for c in "${CLIENT_LIST[@]}"; do [[ $c -gt $MAX_CLIENTS ]] && MAX_CLIENTS=$c; done
# direct clients + PgBouncer's idle server pool + shardgate's server connections + slack
PG_MAX_CONN=$((3 * MAX_CLIENTS + 20))
has_target baseline && PG_MAX_CONN=$((4 * MAX_CLIENTS + 40)) # and the baseline's pool
[[ $PG_MAX_CONN -ge 300 ]] || PG_MAX_CONN=300

# ---------------------------------------------------------------- cleanup
TMP=""
PG_STARTED=0
SG_PID=""
BASE_PID=""
PGB_PID=""
BENCH_PID=""

cleanup() {
    local rc=$?
    trap - EXIT
    trap '' INT TERM # a second Ctrl-C must not cut the cleanup short
    set +e
    if [[ -n $BENCH_PID ]]; then kill -TERM "$BENCH_PID" 2>/dev/null; wait "$BENCH_PID" 2>/dev/null; fi
    stop_pid "$SG_PID" shardgate
    [[ -n $SG_PID ]] && wait "$SG_PID" 2>/dev/null
    stop_pid "$BASE_PID" baseline
    [[ -n $BASE_PID ]] && wait "$BASE_PID" 2>/dev/null
    stop_pid "$PGB_PID" pgbouncer
    if [[ $PG_STARTED == 1 ]]; then
        runuser -u postgres -- "$PGBIN/pg_ctl" -D "$TMP/pgdata" -m fast -w -t 30 stop >/dev/null 2>&1 ||
            runuser -u postgres -- "$PGBIN/pg_ctl" -D "$TMP/pgdata" -m immediate -w stop >/dev/null 2>&1
    fi
    if [[ -n $TMP && -d $TMP ]]; then
        cd /
        rm -rf "$TMP"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'echo "run.sh: interrupted" >&2; exit 130' INT
trap 'echo "run.sh: terminated" >&2; exit 143' TERM

TMP=$(mktemp -d /tmp/shardgate-bench.XXXXXX)
chown postgres:postgres "$TMP"
chmod 700 "$TMP"
cd "$TMP" # runuser keeps the working directory: use one the postgres user can enter
mkdir -p "$TMP/runs"
chown postgres:postgres "$TMP/runs"

export PGUSER=bench PGPASSWORD=bench PGDATABASE=bench PGHOST=127.0.0.1 PGSSLMODE=disable PGGSSENCMODE=disable
unset PGSERVICE PGSERVICEFILE PGPASSFILE PGOPTIONS PGAPPNAME 2>/dev/null || true

read -r PG_PORT PGB_PORT SG_PORT BASE_PORT < <(free_ports 4)

# ---------------------------------------------------------------- client TLS
CLIENT_TLS=${CLIENT_TLS:-0}
PROXY_SSLMODE=disable # how pgbench reaches the proxies
[[ $CLIENT_TLS == 1 ]] && PROXY_SSLMODE=require
if [[ $CLIENT_TLS == 1 ]]; then
    echo "== client TLS: a self-signed certificate for the proxies"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
        -subj /CN=localhost -keyout "$TMP/proxy.key" -out "$TMP/proxy.crt" >"$TMP/openssl.log" 2>&1 ||
        { show_log "$TMP/openssl.log"; die "openssl could not make a certificate"; }
    chown postgres:postgres "$TMP/proxy.key" "$TMP/proxy.crt"
    chmod 600 "$TMP/proxy.key"
fi

# ---------------------------------------------------------------- Postgres
echo "== Postgres 15 on 127.0.0.1:$PG_PORT (temp dir $TMP)"
runuser -u postgres -- "$PGBIN/initdb" -D "$TMP/pgdata" -U postgres -E UTF8 --locale=C \
    --auth-local=trust --auth-host=scram-sha-256 >"$TMP/initdb.log" 2>&1 ||
    { show_log "$TMP/initdb.log"; die "initdb failed"; }
cat >>"$TMP/pgdata/postgresql.conf" <<EOF

# bench/run.sh
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$TMP'
max_connections = $PG_MAX_CONN
password_encryption = 'scram-sha-256'
fsync = off
synchronous_commit = off
full_page_writes = off
shared_buffers = 256MB
log_min_messages = warning
EOF
runuser -u postgres -- "$PGBIN/pg_ctl" -D "$TMP/pgdata" -l "$TMP/postgres.log" -w -t 60 start >/dev/null ||
    { show_log "$TMP/postgres.log"; die "Postgres did not start"; }
PG_STARTED=1
psql_admin() { runuser -u postgres -- "$PGBIN/psql" -h "$TMP" -p "$PG_PORT" -U postgres -d "${2:-postgres}" -XAtq -v ON_ERROR_STOP=1 -c "$1"; }
psql_admin "CREATE ROLE bench LOGIN PASSWORD 'bench'"
psql_admin "CREATE DATABASE bench OWNER bench"
wait_ready Postgres "$PG_PORT" "$TMP/postgres.log"
echo "== pgbench -i -s $SCALE"
"$PGBIN/pgbench" -i -q -s "$SCALE" -p "$PG_PORT" >"$TMP/pgbench-init.log" 2>&1 ||
    { show_log "$TMP/pgbench-init.log"; die "pgbench -i failed"; }
psql_admin "CHECKPOINT"
PG_VERSION=$(psql_admin "SHOW server_version")

# ---------------------------------------------------------------- PgBouncer
PGB_VERSION=""
if has_target pgbouncer; then
    echo "== PgBouncer ($POOL_MODE mode) on 127.0.0.1:$PGB_PORT"
    SCRAM=$(psql_admin "SELECT rolpassword FROM pg_authid WHERE rolname = 'bench'")
    [[ $SCRAM == SCRAM-SHA-256\$* ]] || die "no SCRAM verifier for role bench"
    printf '"bench" "%s"\n' "$SCRAM" >"$TMP/userlist.txt"
    cat >"$TMP/pgbouncer.ini" <<EOF
[databases]
bench = host=127.0.0.1 port=$PG_PORT dbname=bench

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $PGB_PORT
unix_socket_dir =
auth_type = scram-sha-256
auth_file = $TMP/userlist.txt
pool_mode = $POOL_MODE
max_client_conn = $((MAX_CLIENTS + 20))
default_pool_size = $((MAX_CLIENTS + 5))
min_pool_size = 0
reserve_pool_size = 0
max_db_connections = 0
server_tls_sslmode = disable
$(if [[ $CLIENT_TLS == 1 ]]; then
        printf 'client_tls_sslmode = require\nclient_tls_key_file = %s\nclient_tls_cert_file = %s\n' "$TMP/proxy.key" "$TMP/proxy.crt"
    else
        echo "client_tls_sslmode = disable"
    fi)
logfile = $TMP/pgbouncer.log
pidfile = $TMP/pgbouncer.pid
log_connections = 0
log_disconnections = 0
log_pooler_errors = 1
ignore_startup_parameters = extra_float_digits
EOF
    chown postgres:postgres "$TMP/userlist.txt" "$TMP/pgbouncer.ini"
    chmod 600 "$TMP/userlist.txt"
    # PgBouncer needs a descriptor per client and per server connection; the default soft limit
    # (1024, which runuser's PAM session sets again) refuses -c 1000 ("accept() failed: Too many
    # open files"). shardgate raises its own.
    nofile=$((2 * MAX_CLIENTS + 200))
    [[ $nofile -le $(ulimit -Hn) ]] || nofile=$(ulimit -Hn)
    runuser -u postgres -- prlimit --nofile="$nofile:$nofile" "$PGBOUNCER_BIN" -d "$TMP/pgbouncer.ini" \
        >"$TMP/pgbouncer.stdout" 2>&1 ||
        { show_log "$TMP/pgbouncer.stdout"; show_log "$TMP/pgbouncer.log"; die "PgBouncer did not start"; }
    for ((i = 0; i < 50; i++)); do [[ -s $TMP/pgbouncer.pid ]] && break; sleep 0.1; done
    PGB_PID=$(cat "$TMP/pgbouncer.pid" 2>/dev/null || true)
    [[ -n $PGB_PID ]] && kill -0 "$PGB_PID" 2>/dev/null || { show_log "$TMP/pgbouncer.log"; die "PgBouncer has no pid file"; }
    PGSSLMODE=$PROXY_SSLMODE wait_ready PgBouncer "$PGB_PORT" "$TMP/pgbouncer.log"
    PGB_VERSION=$("$PGBOUNCER_BIN" --version | head -n 1)
fi

# ---------------------------------------------------------------- shardgate
SG_VERSION=""
SG_SHA=""
BASE_VERSION=""
BASE_SHA=""
# Starts one shardgate: start_shardgate name binary port; sets STARTED_PID, STARTED_SHA,
# STARTED_VERSION.
start_shardgate() {
    local name=$1 bin=$2 port=$3
    echo "== $name on 127.0.0.1:$port ($bin)"
    # Run a private copy: a colleague's rebuild of the binary mid-run cannot change what is measured.
    cp "$bin" "$TMP/$name"
    STARTED_SHA=$(sha256sum "$TMP/$name" | cut -c1-12)
    STARTED_VERSION=$("$TMP/$name" --version 2>&1 | head -n 1)
    {
        echo "[shardgate]"
        echo "listen_addr = \"127.0.0.1\""
        echo "listen_port = $port"
        [[ -z $WORKERS ]] || echo "workers = $WORKERS"
        [[ -z $DATA_PLANES ]] || echo "data_planes = $DATA_PLANES"
        # Sized like PgBouncer's pool above: every client gets a server connection.
        echo "pool_mode = \"$POOL_MODE\""
        echo "pool_size = $((MAX_CLIENTS + 5))"
        echo "max_client_conn = $((MAX_CLIENTS + 20))"
        echo "log_level = \"warn\""
        echo "shutdown_timeout_ms = 2000"
        if [[ $CLIENT_TLS == 1 ]]; then
            echo "tls_cert_file = \"$TMP/proxy.crt\""
            echo "tls_key_file = \"$TMP/proxy.key\""
        fi
        echo
        echo "[databases.bench]"
        echo "host = \"127.0.0.1\""
        echo "port = $PG_PORT"
        echo "dbname = \"bench\""
        echo "server_tls = \"disable\""
        echo
        echo "[users.bench]"
        echo "password = \"bench\""
        echo "auth = \"scram-sha-256\""
    } >"$TMP/$name.toml"
    # setsid: its own session, as PgBouncer has after daemonizing (-d). With the kernel's
    # autogroup scheduling (sched_autogroup_enabled=1) each session is a scheduling group;
    # left in this script's session, shardgate would share one CPU share with pgbench.
    setsid "$TMP/$name" --config "$TMP/$name.toml" </dev/null >"$TMP/$name.log" 2>&1 &
    STARTED_PID=$!
    sleep 0.2
    kill -0 "$STARTED_PID" 2>/dev/null || { show_log "$TMP/$name.log"; die "$name exited at start"; }
    PGSSLMODE=$PROXY_SSLMODE wait_ready "$name" "$port" "$TMP/$name.log"
}
if has_target shardgate; then
    start_shardgate shardgate "$SHARDGATE" "$SG_PORT"
    SG_PID=$STARTED_PID SG_SHA=$STARTED_SHA SG_VERSION=$STARTED_VERSION
fi
if has_target baseline; then
    start_shardgate baseline "$BASELINE" "$BASE_PORT"
    BASE_PID=$STARTED_PID BASE_SHA=$STARTED_SHA BASE_VERSION=$STARTED_VERSION
fi

target_port() { case $1 in direct) echo "$PG_PORT" ;; pgbouncer) echo "$PGB_PORT" ;; shardgate) echo "$SG_PORT" ;; baseline) echo "$BASE_PORT" ;; esac; }
target_pid() { case $1 in pgbouncer) echo "$PGB_PID" ;; shardgate) echo "$SG_PID" ;; baseline) echo "$BASE_PID" ;; *) echo "" ;; esac; }
target_log() { case $1 in direct) echo "$TMP/postgres.log" ;; pgbouncer) echo "$TMP/pgbouncer.log" ;; shardgate) echo "$TMP/shardgate.log" ;; baseline) echo "$TMP/baseline.log" ;; esac; }
supported() { # target mode
    [[ $1 == pgbouncer && $POOL_MODE == transaction && $2 == prepared ]] && return 1 # PgBouncer 1.18
    return 0
}

# ---------------------------------------------------------------- pgbench runs
write_parse_py "$TMP/parse.py"

# Runs pgbench once; sets R_STATUS R_TPS R_TXNS R_FAILED R_LAT R_P50 R_P99 R_CPU (µs/txn or NA).
run_pgbench() { # target mode clients duration tag
    local target=$1 mode=$2 clients=$3 duration=$4 tag=$5
    local port pid threads out logprefix="" c0 c1 rc=0
    port=$(target_port "$target")
    pid=$(target_pid "$target")
    threads=$((clients < NPROC ? clients : NPROC))
    out=$TMP/runs/$tag.out
    local -a args=(-n -S -M "$mode" -c "$clients" -j "$threads" -T "$duration" -p "$port")
    if [[ $LATENCY == 1 ]]; then
        logprefix=$TMP/runs/$tag.lat
        args+=(--log --log-prefix="$logprefix")
    fi
    c0=-1
    [[ -n $pid ]] && c0=$(cpu_ticks "$pid")
    local sslmode=$PROXY_SSLMODE
    [[ $target == direct ]] && sslmode=disable
    PGSSLMODE=$sslmode "$PGBIN/pgbench" "${args[@]}" >"$out" 2>&1 &
    BENCH_PID=$!
    wait "$BENCH_PID" || rc=$?
    BENCH_PID=""
    c1=-1
    [[ -n $pid ]] && c1=$(cpu_ticks "$pid")
    R_STATUS=$rc
    IFS=$'\t' read -r R_TPS R_TXNS R_FAILED R_LAT R_P50 R_P99 < <("$PY" "$TMP/parse.py" "$out" ${logprefix:+"$logprefix"})
    R_CPU=NA
    if [[ $c0 -ge 0 && $c1 -ge 0 && $R_TXNS != NA && $R_TXNS -gt 0 ]]; then
        R_CPU=$("$PY" -c "print('%.2f' % (($c1 - $c0) / $CLK_TCK * 1e6 / $R_TXNS))")
    fi
    if [[ $rc -ne 0 || $R_TPS == NA ]]; then
        echo "   !! pgbench exited with status $rc against $target (-M $mode -c $clients):" >&2
        grep -v '^pgbench: warning' "$out" | grep -iE 'error|abort|fatal|fail' | head -n 5 | sed 's/^/      /' >&2 || true
        cp "$out" "${OUT%.md}.$tag.failed.log" 2>/dev/null && echo "      (full output kept in ${OUT%.md}.$tag.failed.log)" >&2
    fi
    if [[ -n $pid ]] && ! kill -0 "$pid" 2>/dev/null; then
        show_log "$(target_log "$target")"
        die "$target (pid $pid) died during the run"
    fi
}

N_TARGETS=${#TARGET_LIST[@]}
N_RUNS=$((ROUNDS * ${#MODE_LIST[@]} * ${#CLIENT_LIST[@]} * N_TARGETS))
EST=$((N_RUNS * (DURATION + 1) + N_TARGETS * WARMUP))
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
START_TS=$(date +%s)
START_DATE=$(date -u '+%Y-%m-%d %H:%M UTC')
echo "== $N_RUNS runs of ${DURATION}s ($ROUNDS rounds x modes [${MODE_LIST[*]}] x clients [${CLIENT_LIST[*]}] x targets [${TARGET_LIST[*]}]), about $((EST / 60))m$((EST % 60))s; load average $LOAD_BEFORE"

if [[ $WARMUP -gt 0 ]]; then
    for t in "${TARGET_LIST[@]}"; do
        echo "   warm-up: $t (-M simple -c $MAX_CLIENTS -T $WARMUP)"
        run_pgbench "$t" simple "$MAX_CLIENTS" "$WARMUP" "warmup-$t"
    done
fi

printf 'round\tmode\tclients\ttarget\tstatus\ttps\ttxns\tfailed\tlat_avg_ms\tcpu_us_per_txn\tp50_ms\tp99_ms\n' >"$RAW"
run_no=0
for ((r = 0; r < ROUNDS; r++)); do
    order=()
    for ((i = 0; i < N_TARGETS; i++)); do order+=("${TARGET_LIST[$(((i + r) % N_TARGETS))]}"); done
    echo "== round $((r + 1))/$ROUNDS: ${order[*]}"
    for mode in "${MODE_LIST[@]}"; do
        for c in "${CLIENT_LIST[@]}"; do
            for t in "${order[@]}"; do
                run_no=$((run_no + 1))
                if ! supported "$t" "$mode"; then
                    printf '%s\t%s\t%s\t%s\tn/a\tNA\tNA\tNA\tNA\tNA\tNA\tNA\n' $((r + 1)) "$mode" "$c" "$t" >>"$RAW"
                    printf '   [%3d/%d] %-9s -M %-8s -c %-3s  n/a (pool_mode=%s)\n' "$run_no" "$N_RUNS" "$t" "$mode" "$c" "$POOL_MODE"
                    continue
                fi
                run_pgbench "$t" "$mode" "$c" "$DURATION" "r$((r + 1))-$mode-c$c-$t"
                printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' $((r + 1)) "$mode" "$c" "$t" \
                    "$R_STATUS" "$R_TPS" "$R_TXNS" "$R_FAILED" "$R_LAT" "$R_CPU" "$R_P50" "$R_P99" >>"$RAW"
                extra=""
                [[ $t == direct ]] || extra+="  cpu/txn $(printf '%6s' "$R_CPU") us"
                [[ $LATENCY == 1 ]] && extra+="  p50 $R_P50 ms  p99 $R_P99 ms"
                printf '   [%3d/%d] %-9s -M %-8s -c %-3s  tps %8s  lat %7s ms  failed %s%s\n' \
                    "$run_no" "$N_RUNS" "$t" "$mode" "$c" "${R_TPS%.*}" "$R_LAT" "$R_FAILED" "$extra"
            done
        done
    done
done

END_TS=$(date +%s)
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)
ELAPSED=$((END_TS - START_TS))
TOTAL=$((END_TS - SCRIPT_START)) # with setup: initdb, pgbench -i, starting the proxies

# ---------------------------------------------------------------- report
notes=()
for t in pgbouncer shardgate baseline; do
    has_target "$t" || continue
    log=$(target_log "$t")
    [[ -s $log ]] || continue
    n=$(grep -ciE 'warning|error|fatal' "$log" || true)
    if [[ $n -gt 0 ]]; then
        notes+=("$t logged $n warning/error lines during the run; first of them:")
        while IFS= read -r line; do notes+=("    $line"); done < <(grep -iE 'warning|error|fatal' "$log" | head -n 5)
    fi
done

CPU_MODEL=$(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
HEAD=$(cd "$REPO_ROOT" && git rev-parse --short HEAD 2>/dev/null || echo unknown)
DIRTY=$(cd "$REPO_ROOT" && git status --porcelain --untracked-files=no 2>/dev/null | grep -q . && echo " (with uncommitted changes)" || true)
CMD="bash bench/run.sh"
[[ ${#ORIG_ARGS[@]} -eq 0 ]] || CMD+=" $(shell_quote "${ORIG_ARGS[@]}")"

case $(cat /proc/sys/kernel/sched_autogroup_enabled 2>/dev/null || echo x) in
    1) AUTOGROUP=on ;; 0) AUTOGROUP=off ;; *) AUTOGROUP=unknown ;;
esac
export ELAPSED TOTAL LOAD_BEFORE LOAD_AFTER START_DATE CPU_MODEL NPROC HEAD DIRTY CMD SCALE DURATION ROUNDS \
    WARMUP POOL_MODE PG_VERSION PGB_VERSION SG_VERSION SG_SHA BASE_VERSION BASE_SHA LATENCY WORKERS DATA_PLANES AUTOGROUP \
    CLIENT_TLS
"$PY" - "$RAW" "$OUT" "$ENVS" "${notes[@]}" <<'EOF'
import csv, os, statistics, sys

raw, out, envs, notes = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
E = os.environ
rows = list(csv.DictReader(open(raw), delimiter="\t"))
latency = E["LATENCY"] == "1"

def num(v):
    try:
        return float(v)
    except (TypeError, ValueError):
        return None

keys = []
groups = {}
for r in rows:
    k = (r["mode"], int(r["clients"]), r["target"])
    if k not in groups:
        keys.append(k)
        groups[k] = []
    groups[k].append(r)
target_order = {"direct": 0, "pgbouncer": 1, "shardgate": 2, "baseline": 3}
has_baseline = any(k[2] == "baseline" for k in groups)
mode_order = {"simple": 0, "extended": 1, "prepared": 2}
keys.sort(key=lambda k: (mode_order[k[0]], k[1], target_order[k[2]]))

def med(rs, field):
    vals = [num(r[field]) for r in rs]
    vals = [v for v in vals if v is not None]
    return statistics.median(vals) if vals else None

summary = {}
for k in keys:
    rs = groups[k]
    if all(r["status"] == "n/a" for r in rs):
        summary[k] = None
        continue
    tps = [num(r["tps"]) for r in rs if num(r["tps"]) is not None]
    summary[k] = dict(
        tps=statistics.median(tps) if tps else None,
        spread=(max(tps) - min(tps)) / statistics.median(tps) * 100 if len(tps) > 1 and statistics.median(tps) else None,
        cpu=med(rs, "cpu_us_per_txn"),
        lat=med(rs, "lat_avg_ms"),
        p50=med(rs, "p50_ms"),
        p99=med(rs, "p99_ms"),
        failed=sum(int(r["failed"]) for r in rs if r["failed"].isdigit()),
        bad=sum(1 for r in rs if r["status"] not in ("0", "n/a") or num(r["tps"]) is None),
        n=len(tps),
    )

header = ["mode", "clients", "target", "tps (median)", "vs PgBouncer", "proxy CPU µs/txn", "lat avg ms"]
if has_baseline:
    header += ["tps, CPU vs baseline"]
if latency:
    header += ["p50 ms", "p99 ms"]
header += ["tps spread", "failed txns"]
table = []
for k in keys:
    mode, clients, target = k
    s = summary[k]
    if s is None:
        table.append([mode, str(clients), target, "n/a", "n/a", "n/a", "n/a"] + (["n/a"] if has_baseline else []) + (["n/a", "n/a"] if latency else []) + ["", "n/a"])
        continue
    base = summary.get((mode, clients, "pgbouncer"))
    if base and base["tps"] and s["tps"] is not None:
        ratio = "%.2f" % (s["tps"] / base["tps"])
    else:
        ratio = "n/a"
    f = lambda v, fmt: "–" if v is None else fmt % v
    row = [mode, str(clients), target, f(s["tps"], "%.0f"), ratio,
           "–" if target == "direct" else f(s["cpu"], "%.1f"), f(s["lat"], "%.3f")]
    if has_baseline:
        b = summary.get((mode, clients, "baseline"))
        if target == "shardgate" and b and b["tps"] and s["tps"] is not None and b["cpu"] and s["cpu"] is not None:
            row += ["%.3f, %.3f" % (s["tps"] / b["tps"], s["cpu"] / b["cpu"])]
        else:
            row += [""]
    if latency:
        row += [f(s["p50"], "%.3f"), f(s["p99"], "%.3f")]
    row += [f(s["spread"], "%.1f%%")]
    failed = str(s["failed"])
    if s["bad"]:
        failed += " (%d of %d runs failed)" % (s["bad"], len(groups[k]))
    row.append(failed)
    table.append(row)

widths = [max(len(header[i]), *(len(r[i]) for r in table)) for i in range(len(header))]
right = set(range(3, len(header)))
def line(cells):
    return "| " + " | ".join(c.rjust(widths[i]) if i in right else c.ljust(widths[i]) for i, c in enumerate(cells)) + " |"
sep = "|" + "|".join(("-" * (widths[i] + 1) + ":") if i in right else ("-" * (widths[i] + 2)) for i in range(len(header))) + "|"
md_table = "\n".join([line(header), sep] + [line(r) for r in table])

mins, secs = divmod(int(E["ELAPSED"]), 60)
tmins, tsecs = divmod(int(E["TOTAL"]), 60)
workers = E["WORKERS"] or "one per core (default)"
planes = E["DATA_PLANES"] or "cores − 1, at least 1 (default)"
autogroup = E["AUTOGROUP"]
baseline_line = ""
if has_baseline:
    baseline_line = (f"- baseline: {E['BASE_VERSION']} (binary sha256 {E['BASE_SHA']}), the same config on its own port; "
                     "tps, CPU vs baseline: shardgate's median tps and CPU µs/txn over the baseline's\n")
tls_line = ""
if E["CLIENT_TLS"] == "1":
    tls_line = ("- client TLS: pgbench connects to the proxies with sslmode=require (self-signed P-256 certificate; "
                "PgBouncer client_tls_sslmode=require, shardgate tls_cert_file); direct Postgres and both proxies' "
                "server connections are plain\n")
doc = f"""# shardgate benchmark, {E['START_DATE']}

Command: `{envs}{E['CMD'].strip()}`; pgbench runs took {mins}m{secs:02d}s, {tmins}m{tsecs:02d}s with setup

- workload: `pgbench -n -S -M <mode> -c <clients> -j min(clients, {E['NPROC']}) -T {E['DURATION']}`, scale {E['SCALE']},
  one connection per client for the whole run; interleaved rounds: {E['ROUNDS']} (target order rotated each round),
  warm-up {E['WARMUP']} s per target; medians over rounds
- tps: pgbench's "without initial connection time"; vs PgBouncer: tps / PgBouncer's tps (same mode and clients)
- proxy CPU µs/txn: the proxy process's utime+stime (/proc/<pid>/stat) over the pgbench run, divided by the
  transactions processed; tps spread: (max − min) / median over the rounds
- Postgres {E['PG_VERSION']} (fsync=off), {E['PGB_VERSION'] or 'PgBouncer not run'} pool_mode={E['POOL_MODE']},
  {E['SG_VERSION'] or 'shardgate not run'} (binary sha256 {E['SG_SHA'] or '–'}, repo {E['HEAD']}{E['DIRTY']}, workers: {workers}, data planes: {planes}), pool_mode={E['POOL_MODE']}
{baseline_line}{tls_line}- machine: {E['NPROC']} × {E['CPU_MODEL']}; pgbench, Postgres and the proxies all share it; kernel autogroup
  scheduling: {autogroup}; Postgres, PgBouncer (-d) and shardgate (setsid) each run in their own session
  Load average (1/5/15 min) before: {E['LOAD_BEFORE']}, after: {E['LOAD_AFTER']}

{md_table}
"""
if notes:
    doc += "\nNotes:\n\n```\n" + "\n".join(notes) + "\n```\n"
with open(out, "w") as fh:
    fh.write(doc)
print()
print(md_table)
EOF
echo
echo "== wrote $OUT (raw runs: $RAW); pgbench runs $((ELAPSED / 60))m$((ELAPSED % 60))s, total $((TOTAL / 60))m$((TOTAL % 60))s; load average before $LOAD_BEFORE, after $LOAD_AFTER"
