#!/usr/bin/env bash
# Read/write-split benchmark: a primary with two streaming replicas, and pgbench's select-only
# load sent to the primary directly, through Pgpool-II (streaming-replication mode, load
# balancing on) and through shardgate with read_write_split off and on, in interleaved rounds.
# Reports tps medians and ratios, each proxy's CPU per transaction, latency percentiles, and
# pg_stat_database.xact_commit deltas per server (where the reads really went). Everything it
# starts is stopped and the temp dir removed on exit, Ctrl-C or failure. See bench/README.md.
set -euo pipefail

SCRIPT_START=$(date +%s)
REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
PGPOOL_BIN=${PGPOOL_BIN:-/usr/sbin/pgpool}
PY=/usr/bin/python3 # the system's python3, standard library only
PROG=rw_split.sh
# shellcheck source=bench/lib.sh
source "$REPO_ROOT/bench/lib.sh"
ALL_TARGETS="direct pgpool shardgate-off shardgate-on"

usage() {
    cat <<EOF
Usage: bash bench/rw_split.sh [options]

Options (environment variable in brackets; the option wins):
  --shardgate PATH      shardgate binary [SHARDGATE] (default: build/proxy/shardgate)
  --clients "LIST"      client counts [CLIENTS] (default: "16 64")
  --targets "LIST"      subset of "$ALL_TARGETS" [TARGETS] (default: all four)
  --rounds N            interleaved rounds; the order of targets rotates each round [ROUNDS] (default: 3)
  --duration SECONDS    pgbench -T per run [DURATION] (default: 20)
  --scale N             pgbench -i -s [SCALE] (default: 10)
  --warmup SECONDS      one warm-up run per target before round 1, 0 = none [WARMUP] (default: 2)
  --settle SECONDS      pause after each run before reading pg_stat_database, so that pooled
                        server connections have flushed their statistics [SETTLE] (default: 11)
  --primary-reads       the primary takes reads too: shardgate primary_reads = true, pgpool
                        backend_weight0 = 1 (default: replicas only, weight 0) [PRIMARY_READS=1]
  --pgpool-statement-lb pgpool statement_level_load_balance = on (default off: pgpool picks one
                        load-balance node per client session) [PGPOOL_STATEMENT_LB=1]
  --workers N           shardgate workers (default: not set, i.e. one per core) [WORKERS]
  --data-planes N       shardgate data_planes (default: not set) [DATA_PLANES]
  --no-latency          no pgbench --log, so no p50/p99 [LATENCY=0]
  --out FILE            markdown results file [OUT] (default: bench/results-<date>-rw-split.md;
                        the raw per-run rows go next to it as <name>.runs.tsv)
  -h, --help            this help

Example (a quick check, about a minute): DURATION=3 ROUNDS=1 CLIENTS=4 SCALE=1 bash bench/rw_split.sh
EOF
}

# ---------------------------------------------------------------- options
ENVS="" # the settings that came from the environment, for the record
for v in SHARDGATE CLIENTS TARGETS ROUNDS DURATION SCALE WARMUP SETTLE PRIMARY_READS PGPOOL_STATEMENT_LB \
    WORKERS DATA_PLANES LATENCY OUT; do
    [[ -z ${!v+x} ]] || ENVS+="$(shell_quote "$v=${!v}") "
done
SHARDGATE=${SHARDGATE:-$REPO_ROOT/build/proxy/shardgate}
CLIENTS=${CLIENTS:-16 64}
TARGETS=${TARGETS:-$ALL_TARGETS}
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-20}
SCALE=${SCALE:-10}
WARMUP=${WARMUP:-2}
SETTLE=${SETTLE:-11}
PRIMARY_READS=${PRIMARY_READS:-0}
ROUTE_ONLY=${ROUTE_ONLY:-0} # 1: split on routes every read but to the primary (see sg_config)
PGPOOL_STATEMENT_LB=${PGPOOL_STATEMENT_LB:-0}
WORKERS=${WORKERS:-}
DATA_PLANES=${DATA_PLANES:-}
LATENCY=${LATENCY:-1}
OUT=${OUT:-}
ORIG_ARGS=("$@")

need_arg() { [[ $# -ge 2 ]] || die "$1 needs a value"; }
while [[ $# -gt 0 ]]; do
    case $1 in
        --shardgate) need_arg "$@"; SHARDGATE=$2; shift 2 ;;
        --clients) need_arg "$@"; CLIENTS=$2; shift 2 ;;
        --targets) need_arg "$@"; TARGETS=$2; shift 2 ;;
        --rounds) need_arg "$@"; ROUNDS=$2; shift 2 ;;
        --duration) need_arg "$@"; DURATION=$2; shift 2 ;;
        --scale) need_arg "$@"; SCALE=$2; shift 2 ;;
        --warmup) need_arg "$@"; WARMUP=$2; shift 2 ;;
        --settle) need_arg "$@"; SETTLE=$2; shift 2 ;;
        --primary-reads) PRIMARY_READS=1; shift ;;
        --pgpool-statement-lb) PGPOOL_STATEMENT_LB=1; shift ;;
        --workers) need_arg "$@"; WORKERS=$2; shift 2 ;;
        --data-planes) need_arg "$@"; DATA_PLANES=$2; shift 2 ;;
        --no-latency) LATENCY=0; shift ;;
        --out) need_arg "$@"; OUT=$2; shift 2 ;;
        -h | --help) usage; exit 0 ;;
        *) echo "$PROG: unknown option '$1'" >&2; usage >&2; exit 2 ;;
    esac
done

read -r -a CLIENT_LIST <<<"$CLIENTS"
read -r -a TARGET_LIST <<<"$TARGETS"
[[ ${#CLIENT_LIST[@]} -gt 0 && ${#TARGET_LIST[@]} -gt 0 ]] || die "--clients and --targets must not be empty"
for c in "${CLIENT_LIST[@]}"; do is_uint "$c" && [[ $c -ge 1 ]] || die "bad client count '$c'"; done
for t in "${TARGET_LIST[@]}"; do
    [[ " $ALL_TARGETS " == *" $t "* ]] || die "unknown target '$t' (expected some of: $ALL_TARGETS)"
done
for v in ROUNDS DURATION SCALE WARMUP SETTLE; do is_uint "${!v}" || die "$v must be a number"; done
[[ $ROUNDS -ge 1 && $DURATION -ge 1 && $SCALE -ge 1 ]] || die "rounds, duration and scale must be >= 1"
for v in PRIMARY_READS PGPOOL_STATEMENT_LB LATENCY; do
    [[ ${!v} == 0 || ${!v} == 1 ]] || die "$v must be 0 or 1"
done
[[ -z $WORKERS ]] || is_uint "$WORKERS" || die "--workers must be a number"
[[ -z $DATA_PLANES ]] || is_uint "$DATA_PLANES" || die "--data-planes must be a number"
has_target() { local t; for t in "${TARGET_LIST[@]}"; do [[ $t == "$1" ]] && return 0; done; return 1; }
has_shardgate() { has_target shardgate-off || has_target shardgate-on; }

[[ $EUID -eq 0 ]] || die "run as root (Postgres and pgpool are started as the 'postgres' user via runuser)"
id postgres >/dev/null 2>&1 || die "no 'postgres' user (apt-get install postgresql-15)"
for b in initdb pg_ctl pg_basebackup postgres psql pgbench; do
    [[ -x $PGBIN/$b ]] || die "$PGBIN/$b not found (apt-get install postgresql-15)"
done
[[ -x $PY ]] || die "$PY not found"
if has_target pgpool; then [[ -x $PGPOOL_BIN ]] || die "$PGPOOL_BIN not found (apt-get install pgpool2)"; fi
if has_shardgate; then
    [[ $SHARDGATE == /* ]] || SHARDGATE=$PWD/$SHARDGATE
    [[ -x $SHARDGATE ]] || die "shardgate binary '$SHARDGATE' not found; build it, e.g.
  cmake -S $REPO_ROOT -B $REPO_ROOT/build -G Ninja && cmake --build $REPO_ROOT/build --target shardgate -j2"
fi

if [[ -z $OUT ]]; then
    OUT=$REPO_ROOT/bench/results-$(date +%Y-%m-%d)-rw-split.md
    n=2
    while [[ -e $OUT ]]; do OUT=$REPO_ROOT/bench/results-$(date +%Y-%m-%d)-rw-split-$n.md; n=$((n + 1)); done
fi
[[ $OUT == /* ]] || OUT=$PWD/$OUT
mkdir -p "$(dirname "$OUT")"
RAW=${OUT%.md}.runs.tsv

CLK_TCK=$(getconf CLK_TCK)
MAX_CLIENTS=0
for c in "${CLIENT_LIST[@]}"; do [[ $c -gt $MAX_CLIENTS ]] && MAX_CLIENTS=$c; done
PGPOOL_CHILDREN=$((MAX_CLIENTS + 4)) # + psql readiness checks and SHOW POOL_NODES
SG_POOL_SIZE=$((MAX_CLIENTS + 5))
# Per server: direct clients + pgpool's children (each connects to every backend) + two shardgate
# pools + slack for checks.
PG_MAX_CONN=$((MAX_CLIENTS + PGPOOL_CHILDREN + 2 * SG_POOL_SIZE + 30))
[[ $PG_MAX_CONN -ge 200 ]] || PG_MAX_CONN=200

# ---------------------------------------------------------------- cleanup
TMP=""
PG_STARTED=() # data directories of running servers, the primary first
PGPOOL_PID=""
PGPOOL_RUNUSER=""
SG_OFF_PID=""
SG_ON_PID=""
BENCH_PID=""

stop_pgpool() { # fast shutdown (SIGINT: children end at once), then stop_pid's TERM / KILL
    local i
    [[ -n $PGPOOL_PID && $(cat "/proc/$PGPOOL_PID/comm" 2>/dev/null) == pgpool ]] || return 0
    kill -INT "$PGPOOL_PID" 2>/dev/null || return 0
    for ((i = 0; i < 100; i++)); do
        kill -0 "$PGPOOL_PID" 2>/dev/null || return 0
        sleep 0.1
    done
    stop_pid "$PGPOOL_PID" pgpool
}

cleanup() {
    local rc=$? d i
    trap - EXIT
    trap '' INT TERM # a second Ctrl-C must not cut the cleanup short
    set +e
    if [[ -n $BENCH_PID ]]; then kill -TERM "$BENCH_PID" 2>/dev/null; wait "$BENCH_PID" 2>/dev/null; fi
    stop_pid "$SG_OFF_PID" shardgate
    stop_pid "$SG_ON_PID" shardgate
    [[ -n $SG_OFF_PID ]] && wait "$SG_OFF_PID" 2>/dev/null
    [[ -n $SG_ON_PID ]] && wait "$SG_ON_PID" 2>/dev/null
    # pgpool's pid file may not be there yet if the script stops during its start.
    [[ -n $PGPOOL_PID || -z $PGPOOL_RUNUSER ]] || PGPOOL_PID=$(pgrep -P "$PGPOOL_RUNUSER" -x pgpool | head -n 1)
    stop_pgpool
    for ((i = ${#PG_STARTED[@]} - 1; i >= 0; i--)); do # replicas first
        d=${PG_STARTED[$i]}
        runuser -u postgres -- "$PGBIN/pg_ctl" -D "$d" -m fast -w -t 30 stop >/dev/null 2>&1 ||
            runuser -u postgres -- "$PGBIN/pg_ctl" -D "$d" -m immediate -w stop >/dev/null 2>&1
    done
    if [[ -n $TMP && -d $TMP ]]; then
        cd /
        rm -rf "$TMP"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'echo "$PROG: interrupted" >&2; exit 130' INT
trap 'echo "$PROG: terminated" >&2; exit 143' TERM

TMP=$(mktemp -d /tmp/shardgate-rwbench.XXXXXX)
chown postgres:postgres "$TMP"
chmod 700 "$TMP"
cd "$TMP" # runuser keeps the working directory: use one the postgres user can enter
mkdir -p "$TMP/runs"
chown postgres:postgres "$TMP/runs"

export PGUSER=bench PGPASSWORD=bench PGDATABASE=bench PGHOST=127.0.0.1 PGSSLMODE=disable PGGSSENCMODE=disable
unset PGSERVICE PGSERVICEFILE PGPASSFILE PGOPTIONS PGAPPNAME 2>/dev/null || true

read -r P_PORT R1_PORT R2_PORT PGPOOL_PORT PCP_PORT SG_OFF_PORT SG_ON_PORT < <(free_ports 7)
SERVERS=(primary replica1 replica2)
SERVER_PORTS=("$P_PORT" "$R1_PORT" "$R2_PORT")

# ---------------------------------------------------------------- Postgres: primary + 2 replicas
psql_on() { # port sql: as postgres over the unix socket, database postgres
    runuser -u postgres -- "$PGBIN/psql" -h "$TMP" -p "$1" -U postgres -d postgres -XAtq -v ON_ERROR_STOP=1 -c "$2"
}

server_conf() { # datadir port name: appended; for a replica, after the primary's copied lines
    cat >>"$1/postgresql.conf" <<EOF

# bench/rw_split.sh: $3
listen_addresses = '127.0.0.1'
port = $2
unix_socket_directories = '$TMP'
cluster_name = '$3'
max_connections = $PG_MAX_CONN
fsync = off
synchronous_commit = off
full_page_writes = off
shared_buffers = 128MB
wal_level = replica
max_wal_senders = 10
wal_keep_size = 512MB
hot_standby = on
wal_receiver_status_interval = 1s
wal_writer_delay = 10ms
log_min_messages = warning
EOF
}

start_server() { # datadir name
    runuser -u postgres -- "$PGBIN/pg_ctl" -D "$1" -l "$TMP/$2.log" -w -t 60 start >/dev/null ||
        { show_log "$TMP/$2.log"; die "Postgres ($2) did not start"; }
    PG_STARTED+=("$1")
}

echo "== Postgres 15: primary on 127.0.0.1:$P_PORT, replicas on :$R1_PORT and :$R2_PORT (temp dir $TMP)"
runuser -u postgres -- "$PGBIN/initdb" -D "$TMP/primary" -U postgres -E UTF8 --locale=C --auth=trust \
    >"$TMP/initdb.log" 2>&1 || { show_log "$TMP/initdb.log"; die "initdb failed"; }
server_conf "$TMP/primary" "$P_PORT" primary
start_server "$TMP/primary" primary
psql_on "$P_PORT" "CREATE ROLE bench LOGIN PASSWORD 'bench'"
psql_on "$P_PORT" "CREATE DATABASE bench OWNER bench"
for i in 1 2; do
    # Over the primary's unix socket (trust); -R writes primary_conninfo and standby.signal.
    runuser -u postgres -- "$PGBIN/pg_basebackup" -D "$TMP/replica$i" -R -X stream -c fast --no-sync \
        --no-manifest -w -h "$TMP" -p "$P_PORT" -U postgres >"$TMP/basebackup$i.log" 2>&1 ||
        { show_log "$TMP/basebackup$i.log"; die "pg_basebackup for replica$i failed"; }
    server_conf "$TMP/replica$i" "${SERVER_PORTS[$i]}" "replica$i"
    start_server "$TMP/replica$i" "replica$i"
done
wait_ready primary "$P_PORT" "$TMP/primary.log"
echo "== pgbench -i -s $SCALE on the primary"
"$PGBIN/pgbench" -i -q -s "$SCALE" -p "$P_PORT" >"$TMP/pgbench-init.log" 2>&1 ||
    { show_log "$TMP/pgbench-init.log"; die "pgbench -i failed"; }
psql_on "$P_PORT" "CHECKPOINT"
LSN=$(psql_on "$P_PORT" "SELECT pg_current_wal_lsn()")
echo "== waiting for the replicas to replay up to $LSN"
for i in 1 2; do
    for ((w = 0; w < 1200; w++)); do
        [[ $(psql_on "${SERVER_PORTS[$i]}" "SELECT pg_last_wal_replay_lsn() >= '$LSN'::pg_lsn" 2>/dev/null) == t ]] && break
        sleep 0.1
    done
    [[ $w -lt 1200 ]] || { show_log "$TMP/replica$i.log"; die "replica$i did not catch up in 120 s"; }
    wait_ready "replica$i" "${SERVER_PORTS[$i]}" "$TMP/replica$i.log"
done
STREAMING=$(psql_on "$P_PORT" "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'")
[[ $STREAMING == 2 ]] || die "the primary has $STREAMING streaming replicas, expected 2"
PG_VERSION=$(psql_on "$P_PORT" "SHOW server_version")

# ---------------------------------------------------------------- Pgpool-II
PGPOOL_VERSION=""
if has_target pgpool; then
    echo "== Pgpool-II on 127.0.0.1:$PGPOOL_PORT (streaming replication, load balancing, $PGPOOL_CHILDREN children)"
    {
        echo "# bench/rw_split.sh"
        echo "backend_clustering_mode = 'streaming_replication'"
        echo "listen_addresses = '127.0.0.1'"
        echo "port = $PGPOOL_PORT"
        echo "socket_dir = '$TMP'"
        echo "pcp_listen_addresses = ''" # PCP on the unix socket only
        echo "pcp_port = $PCP_PORT"
        echo "pcp_socket_dir = '$TMP'"
        for i in 0 1 2; do
            w=1
            [[ $i == 0 && $PRIMARY_READS == 0 ]] && w=0 # weight 0: never a load-balance node
            echo "backend_hostname$i = '127.0.0.1'"
            echo "backend_port$i = ${SERVER_PORTS[$i]}"
            echo "backend_weight$i = $w"
            echo "backend_data_directory$i = '$TMP/${SERVERS[$i]}'"
            echo "backend_flag$i = 'DISALLOW_TO_FAILOVER'" # a benchmark must not fail over
        done
        # Clients log in as on the backends (trust); no pool_hba, no TLS. An empty pool_passwd
        # file: with none at all pgpool warns at every login that it cannot look passwords up.
        echo "enable_pool_hba = off"
        echo "pool_passwd = '$TMP/pool_passwd'"
        echo "ssl = off"
        # One client per child; children live for the whole run with their backend connections.
        echo "num_init_children = $PGPOOL_CHILDREN"
        echo "max_pool = 1"
        echo "reserved_connections = 0"
        echo "child_life_time = 0"
        echo "child_max_connections = 0"
        echo "connection_life_time = 0"
        echo "client_idle_limit = 0"
        echo "load_balance_mode = on"
        echo "statement_level_load_balance = $([[ $PGPOOL_STATEMENT_LB == 1 ]] && echo on || echo off)"
        echo "disable_load_balance_on_write = 'transaction'"
        # Lag checks like shardgate's defaults: every second, replicas past 16 MiB take no reads.
        echo "sr_check_period = 1"
        echo "sr_check_user = 'postgres'"
        # Trust: the servers never ask for these passwords, but with an empty one pgpool looks
        # for it in pool_passwd and warns at every check.
        echo "sr_check_password = 'unused'"
        echo "sr_check_database = 'postgres'"
        echo "delay_threshold = 16777216"
        echo "health_check_period = 10"
        echo "health_check_timeout = 5"
        echo "health_check_user = 'postgres'"
        echo "health_check_password = 'unused'"
        echo "health_check_database = 'postgres'"
        echo "health_check_max_retries = 0"
        echo "failover_command = ''"
        echo "failover_on_backend_error = off"
        echo "use_watchdog = off"
        echo "memory_cache_enabled = off"
        echo "log_destination = 'stderr'"
        echo "log_min_messages = warning"
        echo "log_connections = off"
        echo "pid_file_name = '$TMP/pgpool.pid'"
        echo "logdir = '$TMP'"
    } >"$TMP/pgpool.conf"
    : >"$TMP/pcp.conf"
    : >"$TMP/pool_hba.conf"
    : >"$TMP/pool_passwd"
    chown postgres:postgres "$TMP/pgpool.conf" "$TMP/pcp.conf" "$TMP/pool_hba.conf" "$TMP/pool_passwd"
    # -n: in the foreground (its own session, like the others); -D: no saved backend status.
    runuser -u postgres -- setsid "$PGPOOL_BIN" -n -D -f "$TMP/pgpool.conf" -F "$TMP/pcp.conf" \
        -a "$TMP/pool_hba.conf" </dev/null >"$TMP/pgpool.log" 2>&1 &
    PGPOOL_RUNUSER=$!
    for ((i = 0; i < 100; i++)); do [[ -s $TMP/pgpool.pid ]] && break; sleep 0.1; done
    PGPOOL_PID=$(head -n 1 "$TMP/pgpool.pid" 2>/dev/null | tr -dc '0-9' || true) # the file is NUL-padded
    [[ -n $PGPOOL_PID ]] && kill -0 "$PGPOOL_PID" 2>/dev/null || { show_log "$TMP/pgpool.log"; die "pgpool did not start"; }
    wait_ready pgpool "$PGPOOL_PORT" "$TMP/pgpool.log"
    PGPOOL_VERSION=$("$PGPOOL_BIN" --version 2>&1 | head -n 1)
fi

# ---------------------------------------------------------------- shardgate, splitting off and on
SG_VERSION=""
SG_SHA=""
sg_config() { # port read_write_split
    echo "[shardgate]"
    echo "listen_addr = \"127.0.0.1\""
    echo "listen_port = $1"
    [[ -z $WORKERS ]] || echo "workers = $WORKERS"
    [[ -z $DATA_PLANES ]] || echo "data_planes = $DATA_PLANES"
    echo "pool_mode = \"transaction\""
    echo "pool_size = $SG_POOL_SIZE"
    echo "max_client_conn = $((MAX_CLIENTS + 20))"
    echo "log_level = \"warn\""
    echo "shutdown_timeout_ms = 2000"
    echo
    echo "[databases.bench]"
    echo "host = \"127.0.0.1\""
    echo "port = $P_PORT"
    echo "dbname = \"bench\""
    echo "server_tls = \"disable\""
    if [[ $2 == true && $ROUTE_ONLY == 1 ]]; then
        # The primary again, under another name: not in recovery, so never fit. Every read is
        # classified and routed, then runs on the primary (no fit replica): the routing cost
        # at exactly the server work of splitting off.
        echo "replicas = [ { host = \"localhost\", port = $P_PORT } ]"
    else
        echo "replicas = [ { host = \"127.0.0.1\", port = $R1_PORT }, { host = \"127.0.0.1\", port = $R2_PORT } ]"
    fi
    echo "read_write_split = $2"
    echo "primary_reads = $([[ $PRIMARY_READS == 1 ]] && echo true || echo false)"
    echo
    echo "[users.bench]"
    echo "auth = \"trust\"" # as pgpool's clients log in
    echo "password = \"bench\""
}

start_shardgate() { # name port read_write_split; sets STARTED_PID
    local name=$1
    sg_config "$2" "$3" >"$TMP/$name.toml"
    "$TMP/shardgate" --config "$TMP/$name.toml" --check >"$TMP/$name.check" 2>&1 ||
        { cat "$TMP/$name.check" >&2; die "$SHARDGATE does not accept the read/write-split settings; build one that has them (proxy/src/config/config_replicas.cpp)"; }
    # setsid: its own session and so its own scheduling group with autogroup, as in run.sh.
    setsid "$TMP/shardgate" --config "$TMP/$name.toml" </dev/null >"$TMP/$name.log" 2>&1 &
    STARTED_PID=$!
    sleep 0.2
    kill -0 "$STARTED_PID" 2>/dev/null || { show_log "$TMP/$name.log"; die "$name exited at start"; }
    wait_ready "$name" "$2" "$TMP/$name.log"
}

if has_shardgate; then
    echo "== shardgate ($SHARDGATE): split off on 127.0.0.1:$SG_OFF_PORT, split on on 127.0.0.1:$SG_ON_PORT"
    # Run a private copy: a colleague's rebuild of the binary mid-run cannot change what is measured.
    cp "$SHARDGATE" "$TMP/shardgate"
    SG_SHA=$(sha256sum "$TMP/shardgate" | cut -c1-12)
    SG_VERSION=$("$TMP/shardgate" --version 2>&1 | head -n 1)
    if has_target shardgate-off; then start_shardgate shardgate-off "$SG_OFF_PORT" false; SG_OFF_PID=$STARTED_PID; fi
    if has_target shardgate-on; then start_shardgate shardgate-on "$SG_ON_PORT" true; SG_ON_PID=$STARTED_PID; fi
fi

target_port() {
    case $1 in direct) echo "$P_PORT" ;; pgpool) echo "$PGPOOL_PORT" ;; shardgate-off) echo "$SG_OFF_PORT" ;; shardgate-on) echo "$SG_ON_PORT" ;; esac
}
target_pid() {
    case $1 in pgpool) echo "$PGPOOL_PID" ;; shardgate-off) echo "$SG_OFF_PID" ;; shardgate-on) echo "$SG_ON_PID" ;; *) echo "" ;; esac
}
target_log() {
    case $1 in direct) echo "$TMP/primary.log" ;; pgpool) echo "$TMP/pgpool.log" ;; *) echo "$TMP/$1.log" ;; esac
}
proxy_ticks() { # target: CPU ticks of the proxy; pgpool's is the sum over its process tree
    local pid
    pid=$(target_pid "$1")
    if [[ -z $pid ]]; then echo -1; elif [[ $1 == pgpool ]]; then cpu_ticks_tree "$pid"; else cpu_ticks "$pid"; fi
}

# xact_commit of database bench on the primary and each replica ("p r1 r2"). Asked in database
# postgres, so the question itself is not counted.
xacts() {
    local out="" i
    for i in 0 1 2; do
        out+="$(psql_on "${SERVER_PORTS[$i]}" "SELECT xact_commit FROM pg_stat_database WHERE datname = 'bench'") "
    done
    echo "${out% }"
}

# ---------------------------------------------------------------- pgbench runs
write_parse_py "$TMP/parse.py"

# Runs pgbench once; sets R_STATUS R_TPS R_TXNS R_FAILED R_LAT R_P50 R_P99 R_CPU (µs/txn or NA).
run_pgbench() { # target clients duration tag
    local target=$1 clients=$2 duration=$3 tag=$4
    local port pid out logprefix="" c0 c1 rc=0
    port=$(target_port "$target")
    pid=$(target_pid "$target")
    out=$TMP/runs/$tag.out
    local -a args=(-n -S -M simple -c "$clients" -j $((clients < 2 ? clients : 2)) -T "$duration" -p "$port")
    if [[ $LATENCY == 1 ]]; then
        logprefix=$TMP/runs/$tag.lat
        args+=(--log --log-prefix="$logprefix")
    fi
    c0=$(proxy_ticks "$target")
    "$PGBIN/pgbench" "${args[@]}" >"$out" 2>&1 &
    BENCH_PID=$!
    wait "$BENCH_PID" || rc=$?
    BENCH_PID=""
    c1=$(proxy_ticks "$target")
    R_STATUS=$rc
    IFS=$'\t' read -r R_TPS R_TXNS R_FAILED R_LAT R_P50 R_P99 < <("$PY" "$TMP/parse.py" "$out" ${logprefix:+"$logprefix"})
    R_CPU=NA
    if [[ $c0 -ge 0 && $c1 -ge 0 && $R_TXNS != NA && $R_TXNS -gt 0 ]]; then
        R_CPU=$("$PY" -c "print('%.2f' % (($c1 - $c0) / $CLK_TCK * 1e6 / $R_TXNS))")
    fi
    if [[ $rc -ne 0 || $R_TPS == NA ]]; then
        echo "   !! pgbench exited with status $rc against $target (-c $clients):" >&2
        grep -v '^pgbench: warning' "$out" | grep -iE 'error|abort|fatal|fail' | head -n 5 | sed 's/^/      /' >&2 || true
        cp "$out" "${OUT%.md}.$tag.failed.log" 2>/dev/null && echo "      (full output kept in ${OUT%.md}.$tag.failed.log)" >&2
    fi
    if [[ -n $pid ]] && ! kill -0 "$pid" 2>/dev/null; then
        show_log "$(target_log "$target")"
        die "$target (pid $pid) died during the run"
    fi
}

# Pooled server connections flush their statistics at most once a second while busy and up to
# 10 s after going idle (Postgres' PGSTAT_IDLE_INTERVAL): without the pause, part of a pooled
# run's transactions would be counted in the next run.
settle() { [[ $SETTLE -eq 0 ]] || sleep "$SETTLE"; }

N_TARGETS=${#TARGET_LIST[@]}
N_RUNS=$((ROUNDS * ${#CLIENT_LIST[@]} * N_TARGETS))
EST=$((N_RUNS * (DURATION + SETTLE + 1) + N_TARGETS * WARMUP + SETTLE))
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
START_TS=$(date +%s)
START_DATE=$(date -u '+%Y-%m-%d %H:%M UTC')
echo "== $N_RUNS runs of ${DURATION}s + ${SETTLE}s pause ($ROUNDS rounds x clients [${CLIENT_LIST[*]}] x targets [${TARGET_LIST[*]}]), about $((EST / 60))m$((EST % 60))s; load average $LOAD_BEFORE"

if [[ $WARMUP -gt 0 ]]; then
    for t in "${TARGET_LIST[@]}"; do
        echo "   warm-up: $t (-c $MAX_CLIENTS -T $WARMUP)"
        run_pgbench "$t" "$MAX_CLIENTS" "$WARMUP" "warmup-$t"
    done
fi
settle
X_BEFORE=$(xacts)

printf 'round\tclients\ttarget\tstatus\ttps\ttxns\tfailed\tlat_avg_ms\tcpu_us_per_txn\tp50_ms\tp99_ms\txact_primary\txact_replica1\txact_replica2\n' >"$RAW"
run_no=0
for ((r = 0; r < ROUNDS; r++)); do
    order=()
    for ((i = 0; i < N_TARGETS; i++)); do order+=("${TARGET_LIST[$(((i + r) % N_TARGETS))]}"); done
    echo "== round $((r + 1))/$ROUNDS: ${order[*]}"
    for c in "${CLIENT_LIST[@]}"; do
        for t in "${order[@]}"; do
            run_no=$((run_no + 1))
            run_pgbench "$t" "$c" "$DURATION" "r$((r + 1))-c$c-$t"
            settle
            X_AFTER=$(xacts)
            read -r b0 b1 b2 <<<"$X_BEFORE"
            read -r a0 a1 a2 <<<"$X_AFTER"
            X_BEFORE=$X_AFTER
            d0=$((a0 - b0)) d1=$((a1 - b1)) d2=$((a2 - b2))
            printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' $((r + 1)) "$c" "$t" \
                "$R_STATUS" "$R_TPS" "$R_TXNS" "$R_FAILED" "$R_LAT" "$R_CPU" "$R_P50" "$R_P99" "$d0" "$d1" "$d2" >>"$RAW"
            extra=""
            [[ $t == direct ]] || extra+="  cpu/txn $(printf '%6s' "$R_CPU") us"
            [[ $LATENCY == 1 ]] && extra+="  p50 $R_P50 ms  p99 $R_P99 ms"
            printf '   [%3d/%d] %-13s -c %-3s  tps %8s  failed %s%s  xacts primary/replica1/replica2 %s/%s/%s\n' \
                "$run_no" "$N_RUNS" "$t" "$c" "${R_TPS%.*}" "$R_FAILED" "$extra" "$d0" "$d1" "$d2"
        done
    done
done

END_TS=$(date +%s)
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)
ELAPSED=$((END_TS - START_TS))
TOTAL=$((END_TS - SCRIPT_START))

# ---------------------------------------------------------------- report
POOL_NODES=""
if has_target pgpool; then
    # pgpool's own count of SELECTs per backend, over the whole run (warm-up included).
    POOL_NODES=$("$PGBIN/psql" -p "$PGPOOL_PORT" -X -P pager=off -c "SHOW POOL_NODES" 2>"$TMP/pool_nodes.err" ||
        cat "$TMP/pool_nodes.err")
fi
notes=()
for t in pgpool shardgate-off shardgate-on; do
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
CMD="bash bench/rw_split.sh"
[[ ${#ORIG_ARGS[@]} -eq 0 ]] || CMD+=" $(shell_quote "${ORIG_ARGS[@]}")"
case $(cat /proc/sys/kernel/sched_autogroup_enabled 2>/dev/null || echo x) in
    1) AUTOGROUP=on ;; 0) AUTOGROUP=off ;; *) AUTOGROUP=unknown ;;
esac
NPROC=$(nproc)
export ROUTE_ONLY ELAPSED TOTAL LOAD_BEFORE LOAD_AFTER START_DATE CPU_MODEL NPROC HEAD DIRTY CMD SCALE DURATION ROUNDS \
    WARMUP SETTLE PG_VERSION PGPOOL_VERSION SG_VERSION SG_SHA LATENCY WORKERS DATA_PLANES AUTOGROUP \
    PRIMARY_READS PGPOOL_STATEMENT_LB PGPOOL_CHILDREN SG_POOL_SIZE POOL_NODES
"$PY" - "$RAW" "$OUT" "$ENVS" "${notes[@]}" <<'EOF'
import csv, os, statistics, sys

raw, out, envs, notes = sys.argv[1], sys.argv[2], sys.argv[3], list(sys.argv[4:])
E = os.environ
rows = list(csv.DictReader(open(raw), delimiter="\t"))
latency = E["LATENCY"] == "1"
NAMES = {"direct": "direct (primary)", "pgpool": "pgpool", "shardgate-off": "shardgate split off",
         "shardgate-on": "shardgate split on"}
ORDER = {t: i for i, t in enumerate(NAMES)}

def num(v):
    try:
        return float(v)
    except (TypeError, ValueError):
        return None

groups = {}
for r in rows:
    groups.setdefault((int(r["clients"]), r["target"]), []).append(r)
keys = sorted(groups, key=lambda k: (k[0], ORDER[k[1]]))

def med(rs, field):
    vals = [v for v in (num(r[field]) for r in rs) if v is not None]
    return statistics.median(vals) if vals else None

S = {}
for k in keys:
    rs = groups[k]
    tps = [v for v in (num(r["tps"]) for r in rs) if v is not None]
    x = [sum(int(r["xact_" + s]) for r in rs) for s in ("primary", "replica1", "replica2")]
    S[k] = dict(
        tps=statistics.median(tps) if tps else None,
        spread=(max(tps) - min(tps)) / statistics.median(tps) * 100 if len(tps) > 1 and statistics.median(tps) else None,
        cpu=med(rs, "cpu_us_per_txn"), lat=med(rs, "lat_avg_ms"), p50=med(rs, "p50_ms"), p99=med(rs, "p99_ms"),
        failed=sum(int(r["failed"]) for r in rs if r["failed"].isdigit()),
        bad=sum(1 for r in rs if r["status"] != "0" or num(r["tps"]) is None),
        txns=sum(int(r["txns"]) for r in rs if r["txns"].isdigit()),
        xacts=x, replica_share=(x[1] + x[2]) / sum(x) * 100 if sum(x) > 0 else None,
    )

f = lambda v, fmt: "–" if v is None else fmt % v
def ratio(a, b):
    return "%.2f" % (a / b) if a is not None and b else "n/a"

def md(header, table, right):
    widths = [max(len(header[i]), *(len(r[i]) for r in table)) for i in range(len(header))]
    def line(cells):
        return "| " + " | ".join(c.rjust(widths[i]) if i in right else c.ljust(widths[i]) for i, c in enumerate(cells)) + " |"
    sep = "|" + "|".join(("-" * (widths[i] + 1) + ":") if i in right else ("-" * (widths[i] + 2)) for i in range(len(header))) + "|"
    return "\n".join([line(header), sep] + [line(r) for r in table])

# 1. throughput, CPU, latency
header = ["clients", "target", "tps (median)", "vs pgpool", "proxy CPU µs/txn", "lat avg ms"]
if latency:
    header += ["p50 ms", "p99 ms"]
header += ["tps spread", "reads on replicas", "failed txns"]
table = []
for k in keys:
    c, t = k
    s = S[k]
    base = S.get((c, "pgpool"))
    row = [str(c), NAMES[t], f(s["tps"], "%.0f"), ratio(s["tps"], base["tps"] if base else None),
           "–" if t == "direct" else f(s["cpu"], "%.1f"), f(s["lat"], "%.3f")]
    if latency:
        row += [f(s["p50"], "%.3f"), f(s["p99"], "%.3f")]
    failed = str(s["failed"]) + (" (%d of %d runs failed)" % (s["bad"], len(groups[k])) if s["bad"] else "")
    row += [f(s["spread"], "%.1f%%"), f(s["replica_share"], "%.1f%%"), failed]
    table.append(row)
t1 = md(header, table, set(range(2, len(header) - 1)))

# 2. ratios of shardgate with splitting on
clients = sorted({k[0] for k in keys})
table = []
for c in clients:
    on, off, pp = S.get((c, "shardgate-on")), S.get((c, "shardgate-off")), S.get((c, "pgpool"))
    if on is None:
        continue
    g = lambda s, field: s[field] if s else None
    table.append([str(c), ratio(on["tps"], g(off, "tps")), ratio(on["tps"], g(pp, "tps")),
                  ratio(on["cpu"], g(off, "cpu")), ratio(on["cpu"], g(pp, "cpu"))])
t2 = md(["clients", "tps: split on / split off", "tps: split on / pgpool", "CPU/txn: split on / split off",
         "CPU/txn: split on / pgpool"], table, {1, 2, 3, 4}) if table else "(shardgate-on not run)"

# 3. where the transactions ran
table = []
for k in keys:
    s = S[k]
    x = s["xacts"]
    table.append([str(k[0]), NAMES[k[1]], str(x[0]), str(x[1]), str(x[2]), f(s["replica_share"], "%.1f%%"), str(s["txns"])])
t3 = md(["clients", "target", "primary", "replica1", "replica2", "on replicas", "pgbench txns"], table, {2, 3, 4, 5, 6})

for c in clients:
    on, pp = S.get((c, "shardgate-on")), S.get((c, "pgpool"))
    if on and (on["replica_share"] or 0) < 1:
        notes.append("-c %d: shardgate with read_write_split = true sent no reads to the replicas: either this "
                     "binary does not split reads yet (until the wiring lands the setting is read but unused) "
                     "or it found no replica fit." % c)
    if pp and (pp["replica_share"] or 0) < 1:
        notes.append("-c %d: pgpool sent no reads to the replicas: check its load balancing." % c)

mins, secs = divmod(int(E["ELAPSED"]), 60)
tmins, tsecs = divmod(int(E["TOTAL"]), 60)
reads = "the primary and the replicas (weight 1 each)" if E["PRIMARY_READS"] == "1" else "the replicas only (primary weight 0, primary_reads = false)"
doc = f"""# shardgate read/write-split benchmark, {E['START_DATE']}

Command: `{envs}{E['CMD'].strip()}`; pgbench runs took {mins}m{secs:02d}s, {tmins}m{tsecs:02d}s with setup

- topology: one Postgres {E['PG_VERSION']} primary and two streaming replicas (hot standby, fsync=off), scale {E['SCALE']},
  trust authentication on loopback; reads are balanced over {reads}
- workload: `pgbench -n -S -M simple -c <clients> -j min(clients, 2) -T {E['DURATION']}`, one connection per client for the
  whole run; interleaved rounds: {E['ROUNDS']} (target order rotated each round), warm-up {E['WARMUP']} s per target,
  {E['SETTLE']} s pause after each run for the statistics; medians over rounds
- pgpool: {E['PGPOOL_VERSION'] or 'not run'}, streaming_replication mode, load_balance_mode = on,
  statement_level_load_balance = {'on' if E['PGPOOL_STATEMENT_LB'] == '1' else 'off'}, num_init_children = {E['PGPOOL_CHILDREN']},
  max_pool = 1, sr_check_period = 1 s, delay_threshold = 16 MiB; CPU is the sum over its process tree (main
  process, children, workers, exited children via cutime/cstime)
- shardgate: {E['SG_VERSION'] or 'not run'} (binary sha256 {E['SG_SHA'] or '–'}, repo {E['HEAD']}{E['DIRTY']}),
  pool_mode = transaction, pool_size = {E['SG_POOL_SIZE']}, two processes: read_write_split = false and = true{' (ROUTE_ONLY=1: split on lists the primary as its only replica, under the name localhost; never fit, so every read is classified and routed, then runs on the primary: the routing cost at the server work of split off)' if E.get('ROUTE_ONLY') == '1' else ''}
- proxy CPU µs/txn: utime+stime from /proc over the pgbench run, divided by the transactions processed;
  tps spread: (max − min) / median over the rounds; reads on replicas: share of the xact_commit deltas
- machine: {E['NPROC']} × {E['CPU_MODEL']}; pgbench, the three Postgres servers and the proxies all share it;
  kernel autogroup scheduling: {E['AUTOGROUP']}. Load average (1/5/15 min) before: {E['LOAD_BEFORE']}, after: {E['LOAD_AFTER']}

{t1}

Splitting on, compared (medians):

{t2}

Where the transactions ran: `pg_stat_database.xact_commit` deltas for database bench on each server, summed over
the rounds (pgbench's own transactions plus the few a proxy runs itself):

{t3}
"""
if E.get("POOL_NODES"):
    doc += "\npgpool's SHOW POOL_NODES at the end (select_cnt counts the warm-up too):\n\n```\n" + E["POOL_NODES"] + "\n```\n"
if notes:
    doc += "\nNotes:\n\n```\n" + "\n".join(notes) + "\n```\n"
with open(out, "w") as fh:
    fh.write(doc)
print()
print(t1)
print()
print(t2)
print()
print(t3)
for n in notes:
    print(n)
EOF
echo
echo "== wrote $OUT (raw runs: $RAW); pgbench runs $((ELAPSED / 60))m$((ELAPSED % 60))s, total $((TOTAL / 60))m$((TOTAL % 60))s; load average before $LOAD_BEFORE, after $LOAD_AFTER"
