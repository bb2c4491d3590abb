# Helpers shared by the benchmark scripts (bench/run.sh, bench/rw_split.sh); source it.
# shellcheck shell=bash
#
# The caller sets PROG (its name, for messages), PGBIN and PY (/usr/bin/python3) before using
# them; wait_ready also uses the libpq variables (PGUSER, PGHOST, ...) the caller exports.

die() { echo "$PROG: $*" >&2; exit 1; }
is_uint() { [[ $1 =~ ^[0-9]+$ ]]; }

shell_quote() { # args: shell words, quoted only where needed
    local a out=""
    for a in "$@"; do
        if [[ $a =~ ^[A-Za-z0-9_./=:,+-]+$ ]]; then out+="$a "; else out+="'${a//\'/\'\\\'\'}' "; fi
    done
    printf '%s' "${out% }"
}

show_log() { # file: last lines of a log, for error messages
    [[ -s $1 ]] || return 0
    echo "---- last lines of $(basename "$1") ----" >&2
    tail -n 20 "$1" >&2
}

stop_pid() { # pid name: SIGTERM, then SIGKILL after 10 s; only if the pid still runs that program
    local pid=$1 name=$2 i
    [[ -n $pid && -r /proc/$pid/comm ]] || return 0
    [[ $(cat "/proc/$pid/comm" 2>/dev/null) == "$name"* ]] || return 0
    kill -TERM "$pid" 2>/dev/null || return 0
    for ((i = 0; i < 100; i++)); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    echo "$PROG: $name (pid $pid) did not stop on SIGTERM, killing it" >&2
    kill -KILL "$pid" 2>/dev/null || true
}

free_ports() { # n: n distinct free loopback ports
    "$PY" - "$1" <<'EOF'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
EOF
}

cpu_ticks() { # pid: utime+stime (fields 14, 15 of /proc/<pid>/stat; whole process, all threads)
    local s
    s=$(cat "/proc/$1/stat" 2>/dev/null) || { echo -1; return; }
    s=${s##*) } # fields from 3 on; the command name (field 2) may contain spaces
    local -a f
    read -r -a f <<<"$s"
    echo $((f[11] + f[12]))
}

# pid: CPU ticks of a process and all its descendants, for multi-process servers (pgpool's
# pre-forked children): utime+stime+cutime+cstime of every process in the tree. A child that
# exited and was reaped is in its parent's cutime+cstime; one that exited but was not reaped yet
# still has its own stat. -1 if the pid is gone.
cpu_ticks_tree() {
    "$PY" - "$1" <<'EOF'
import os, sys
root = int(sys.argv[1])
stats = {}
for name in os.listdir("/proc"):
    if not name.isdigit():
        continue
    try:
        with open("/proc/%s/stat" % name) as f:
            s = f.read()
    except OSError:
        continue
    fields = s[s.rindex(")") + 2:].split()  # from field 3 (state) on
    stats[int(name)] = (int(fields[1]), sum(int(x) for x in fields[11:15]))  # ppid, ticks
if root not in stats:
    print(-1)
    sys.exit(0)
children = {}
for pid, (ppid, _) in stats.items():
    children.setdefault(ppid, []).append(pid)
total, todo = 0, [root]
while todo:
    pid = todo.pop()
    total += stats[pid][1]
    todo.extend(children.get(pid, []))
print(total)
EOF
}

wait_ready() { # name port logfile: until "SELECT 1" works through it (libpq environment)
    local name=$1 port=$2 log=$3 i
    for ((i = 0; i < 100; i++)); do
        if "$PGBIN/psql" -p "$port" -XAtqc "SELECT 1" >/dev/null 2>&1; then return 0; fi
        sleep 0.1
    done
    "$PGBIN/psql" -p "$port" -XAtqc "SELECT 1" >&2 || true
    show_log "$log"
    die "$name on port $port does not answer queries"
}

# file: writes parse.py, which turns pgbench's output (and --log files) into one TSV row:
#   parse.py OUTPUT [LOG_PREFIX] -> tps txns failed lat_avg_ms p50_ms p99_ms
# The --log files (LOG_PREFIX.*) are read and deleted.
write_parse_py() {
    cat >"$1" <<'EOF'
import glob, os, re, sys
text = open(sys.argv[1], errors="replace").read()
def find(pattern):
    m = re.search(pattern, text, re.M)
    return m.group(1) if m else "NA"
tps = find(r"^tps = ([0-9.]+) \(without initial connection time\)")
txns = find(r"^number of transactions actually processed: ([0-9]+)")
failed = find(r"^number of failed transactions: ([0-9]+)")
lat = find(r"^latency average = ([0-9.]+) ms")
p50 = p99 = "NA"
if len(sys.argv) > 2:
    lats = []
    for path in glob.glob(sys.argv[2] + ".*"):
        with open(path) as f:
            for line in f:
                parts = line.split()
                # client_id transaction_no time script_no time_epoch time_us [...]; time is in µs,
                # or "failed" / "skipped"
                if len(parts) >= 3 and parts[2].isdigit():
                    lats.append(int(parts[2]))
        os.unlink(path)
    if lats:
        lats.sort()
        def pct(p):  # nearest rank
            k = max(1, -(-len(lats) * p // 100))
            return "%.3f" % (lats[k - 1] / 1000.0)
        p50, p99 = pct(50), pct(99)
print("\t".join([tps, txns, failed, lat, p50, p99]))
EOF
}
