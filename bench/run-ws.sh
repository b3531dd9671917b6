#!/usr/bin/env bash
# Measures WebSocket proxying: closed-loop echo round-trips (passthrough and WebSocket-over-HTTP),
# ws-message fan-out to thousands of connections, and memory per idle connection, for holdfast and
# Debian's pushpin side by side in one run on this machine. Prints Markdown tables and saves them
# under bench/results/ws-<UTC date-time>.md. See bench/README.md.
set -euo pipefail

usage() {
    cat <<'EOF'
usage: bench/run-ws.sh [--clients 100] [--duration 10] [--warmup 2] [--size 64]
                       [--fanout passthrough:5000,test:5000,test:10000,over_http:10000]
                       [--publishes 200] [--batch 10] [--fanout-size 100] [--idle 5000]
                       [--concurrency 100]
                       [--scenarios echo,fanout,idle] [--log-level 2] [--small]
                       [--skip-holdfast] [--skip-pushpin] [--pushpin-variants raised,defaults]
                       [--no-direct] [--no-build]

  --clients N          echo clients, one message in flight each (default 100)
  --duration S         measured echo seconds per row (default 10)
  --warmup S           unmeasured echo seconds before that (default 2)
  --size N             echo message bytes (default 64)
  --fanout LIST        fan-out rows as MODE:N, comma-separated; MODE is passthrough (GRIP origin,
                       2 proxy sockets per connection), test (the proxy's test target /ws) or
                       over_http (GRIP origin through WebSocket-over-HTTP)
                       (default passthrough:5000,test:5000,test:10000,over_http:10000)
  --publishes N        messages published per fan-out row (default 200)
  --batch N            ws-message items per publish POST (default 10)
  --fanout-size N      bytes per published message (default 100)
  --idle N             idle connections per idle row (default 5000)
  --concurrency N      connection opens in flight at once (default 100)
  --scenarios LIST     which scenarios to run (default echo,fanout,idle)
  --log-level N        [runner] log_level for both proxies (default 2, Pushpin's stock level)
  --small              validation run: --clients 20 --duration 2 --warmup 1 --idle 200
                       --fanout passthrough:200,test:200,over_http:200 --publishes 50
  --skip-holdfast      do not build or measure holdfast
  --skip-pushpin       do not measure Debian's pushpin
  --pushpin-variants LIST  pushpin configurations (default raised,defaults):
                       raised: message_rate=1000000 message_hwm=10000000, and zurl's
                       max_open_requests raised from the packaged 2000 to 20000 (a private copy of
                       pushpin's libdir); defaults: the stock 2500/25000 and zurl's 2000. Echo and
                       idle rows run on the first variant only; fan-out rows on each.
  --no-direct          skip the echo rows straight to the origin (no proxy)
  --no-build           do not build holdfast (use HOLDFAST_BIN as it is)
EOF
}

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
MAIN=$(cd "$HERE/.." && pwd)
CLIENTS=100
DURATION=10
WARMUP=2
SIZE=64
FANOUT=passthrough:5000,test:5000,test:10000,over_http:10000
PUBLISHES=200
BATCH=10
FANOUT_SIZE=100
IDLE=5000
CONCURRENCY=100
SCENARIOS=echo,fanout,idle
LOG_LEVEL=2
SKIP_HOLDFAST=0
SKIP_PUSHPIN=0
PUSHPIN_VARIANTS=raised,defaults
NO_DIRECT=0
NO_BUILD=0
HOLDFAST_BIN=${HOLDFAST_BIN:-$MAIN/target/release/holdfast}
PUSHPIN_BIN=${PUSHPIN_BIN:-pushpin}
PUSHPIN_LIBDIR=${PUSHPIN_LIBDIR:-/usr/lib/pushpin}
READY_TIMEOUT_S=30
READY_PATH=/ready
STOP_GRACE_S=8
# Seconds a proxy sits idle after its first 200 (pushpin answers 502 for a moment after it), and
# after a phase before the next memory reading.
SETTLE_S=2
# Longest any one bench-ws run may take.
RUN_MAX_S=900
# Fan-out: how long deliveries may keep coming after the last publish (pushpin is slow).
DRAIN_MAX_S=300
# Fan-out and idle: how long the opening phase may take; what is still opening then counts as an
# open timeout (pushpin with its packaged zurl limit leaves opens beyond 2000 unanswered).
OPEN_MAX_S=120
ZURL_MAX_OPEN=20000

while [ $# -gt 0 ]; do
    case "$1" in
        --clients) CLIENTS=${2:?--clients needs a value}; shift 2 ;;
        --clients=*) CLIENTS=${1#*=}; shift ;;
        --duration) DURATION=${2:?--duration needs a value}; shift 2 ;;
        --duration=*) DURATION=${1#*=}; shift ;;
        --warmup) WARMUP=${2:?--warmup needs a value}; shift 2 ;;
        --warmup=*) WARMUP=${1#*=}; shift ;;
        --size) SIZE=${2:?--size needs a value}; shift 2 ;;
        --size=*) SIZE=${1#*=}; shift ;;
        --fanout) FANOUT=${2:?--fanout needs a value}; shift 2 ;;
        --fanout=*) FANOUT=${1#*=}; shift ;;
        --publishes) PUBLISHES=${2:?--publishes needs a value}; shift 2 ;;
        --publishes=*) PUBLISHES=${1#*=}; shift ;;
        --batch) BATCH=${2:?--batch needs a value}; shift 2 ;;
        --batch=*) BATCH=${1#*=}; shift ;;
        --fanout-size) FANOUT_SIZE=${2:?--fanout-size needs a value}; shift 2 ;;
        --fanout-size=*) FANOUT_SIZE=${1#*=}; shift ;;
        --idle) IDLE=${2:?--idle needs a value}; shift 2 ;;
        --idle=*) IDLE=${1#*=}; shift ;;
        --concurrency) CONCURRENCY=${2:?--concurrency needs a value}; shift 2 ;;
        --concurrency=*) CONCURRENCY=${1#*=}; shift ;;
        --scenarios) SCENARIOS=${2:?--scenarios needs a value}; shift 2 ;;
        --scenarios=*) SCENARIOS=${1#*=}; shift ;;
        --log-level) LOG_LEVEL=${2:?--log-level needs a value}; shift 2 ;;
        --log-level=*) LOG_LEVEL=${1#*=}; shift ;;
        --small)
            CLIENTS=20; DURATION=2; WARMUP=1; IDLE=200; PUBLISHES=50
            FANOUT=passthrough:200,test:200,over_http:200; shift ;;
        --skip-holdfast) SKIP_HOLDFAST=1; shift ;;
        --skip-pushpin) SKIP_PUSHPIN=1; shift ;;
        --pushpin-variants) PUSHPIN_VARIANTS=${2:?--pushpin-variants needs a value}; shift 2 ;;
        --pushpin-variants=*) PUSHPIN_VARIANTS=${1#*=}; shift ;;
        --no-direct) NO_DIRECT=1; shift ;;
        --no-build) NO_BUILD=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "run-ws.sh: unknown argument $1" >&2; usage >&2; exit 2 ;;
    esac
done
for pair in "clients:$CLIENTS" "duration:$DURATION" "warmup:$WARMUP" "size:$SIZE" \
    "publishes:$PUBLISHES" "batch:$BATCH" "fanout-size:$FANOUT_SIZE" "idle:$IDLE" \
    "concurrency:$CONCURRENCY" "log-level:$LOG_LEVEL"; do
    if ! [[ ${pair#*:} =~ ^[0-9]+$ ]] || [ "${pair#*:}" -lt 0 ]; then
        echo "run-ws.sh: --${pair%%:*} must be a whole number" >&2
        exit 2
    fi
done
MODE_RE='(passthrough|test|over_http):[0-9]+'
if ! [[ $FANOUT =~ ^$MODE_RE(,$MODE_RE)*$ ]]; then
    echo "run-ws.sh: --fanout takes MODE:N entries (passthrough, test, over_http), separated by commas" >&2
    exit 2
fi
if ! [[ $SCENARIOS =~ ^(echo|fanout|idle)(,(echo|fanout|idle))*$ ]]; then
    echo "run-ws.sh: --scenarios takes echo, fanout and idle, separated by commas" >&2
    exit 2
fi
if ! [[ $PUSHPIN_VARIANTS =~ ^(raised|defaults)(,(raised|defaults))*$ ]]; then
    echo "run-ws.sh: --pushpin-variants takes raised and defaults, separated by commas" >&2
    exit 2
fi
IFS=, read -r -a FANOUT_LIST <<<"$FANOUT"
for entry in "${FANOUT_LIST[@]}"; do
    n=${entry#*:}
    if [ "$n" -lt 1 ] || [ "$n" -gt 60000 ]; then
        echo "run-ws.sh: fan-out connection counts must be 1..60000" >&2
        exit 2
    fi
done
if [ "$CLIENTS" -lt 1 ] || [ "$IDLE" -lt 1 ] || [ "$DURATION" -lt 1 ] || [ "$PUBLISHES" -lt 1 ] \
    || [ "$BATCH" -lt 1 ] || [ "$CONCURRENCY" -lt 1 ] || [ "$SIZE" -lt 1 ]; then
    echo "run-ws.sh: clients, idle, duration, publishes, batch, concurrency and size must be at least 1" >&2
    exit 2
fi
want() { case ",$SCENARIOS," in *",$1,"*) return 0 ;; *) return 1 ;; esac; }

log() { printf 'run-ws.sh: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

# Every connection is a descriptor in the client and one or two in the proxy: take the hard limit.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
NOFILE=$(ulimit -n)

WORK=$(mktemp -d /tmp/holdfast-ws-bench.XXXXXX)
PLAIN_BACKEND_PID=""
GRIP_BACKEND_PID=""
PROXY_PID=""
CLIENT_PID=""
KEEP_WORK=${BENCH_KEEP:-0}

# shellcheck source=lib.sh
. "$HERE/lib.sh"

# Sum of one /proc/<pid>/status field (kB) over a process tree.
tree_status_kb() {
    local field=$1 total=0 member pid kb
    for member in $(tree_sample "$2" | cut -s -d' ' -f2-); do
        pid=${member%%:*}
        kb=$(awk -v f="$field:" '$1 == f {print $2}' "/proc/$pid/status" 2>/dev/null || true)
        total=$((total + ${kb:-0}))
    done
    echo "$total"
}

# Open descriptors over a process tree.
tree_fds() {
    local total=0 member pid n
    for member in $(tree_sample "$1" | cut -s -d' ' -f2-); do
        pid=${member%%:*}
        n=$(find "/proc/$pid/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l || true)
        total=$((total + ${n:-0}))
    done
    echo "$total"
}

tree_procs() { echo $(($(tree_sample "$1" | wc -w) - 1)); }

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [ -n "$CLIENT_PID" ]; then
        kill -TERM "$CLIENT_PID" 2>/dev/null || true
        wait "$CLIENT_PID" 2>/dev/null || true
    fi
    stop_tree "$PROXY_PID"
    stop_tree "$PLAIN_BACKEND_PID"
    stop_tree "$GRIP_BACKEND_PID"
    if [ "$rc" -ne 0 ] || [ "$KEEP_WORK" = 1 ]; then
        log "logs kept in $WORK"
    else
        rm -rf "$WORK"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- proxies -------------------------------------------------------------------------------

# Routes line for a row's mode.
route_for() {
    case "$1" in
        passthrough) printf '* 127.0.0.1:%s\n' "$PLAIN_PORT" ;;
        over_http) printf '* 127.0.0.1:%s,over_http\n' "$PLAIN_PORT" ;;
        grip-passthrough) printf '* 127.0.0.1:%s\n' "$GRIP_PORT" ;;
        grip-over_http) printf '* 127.0.0.1:%s,over_http\n' "$GRIP_PORT" ;;
        test) printf '* test\n' ;;
    esac
}

# Starts proxy <target> (holdfast | pushpin-raised | pushpin-defaults) in <dir> with the routes
# of <mode>, waits for it to answer and gives it SETTLE_S; sets PROXY_PID, PROXY_PORT, CONTROL_PORT.
start_proxy() {
    local target=$1 dir=$2 mode=$3 kind rate=1000000 hwm=10000000
    kind=${target%%-*}
    case "$target" in
        # holdfast runs with its defaults: no rate cap, bounded per-connection queues.
        holdfast) rate="unset"; hwm="unset" ;;
        pushpin-defaults) rate=2500; hwm=25000 ;;
    esac
    free_port; PROXY_PORT=$FREE_PORT
    free_port; CONTROL_PORT=$FREE_PORT
    # write_config routes to one origin; the row's own routes replace that file below.
    write_config "$kind" "$dir" "$PROXY_PORT" "$CONTROL_PORT" "$PLAIN_PORT" "$rate" "$hwm"
    route_for "$mode" >"$dir/routes"
    if [ "$target" = pushpin-raised ]; then
        # The packaged zurl.conf template caps zurl at 2000 open requests, and every passthrough
        # WebSocket holds one; the runner takes its templates from [global] libdir.
        cp -r "$PUSHPIN_LIBDIR" "$dir/lib"
        sed -i "s/^max_open_requests=.*/max_open_requests=$ZURL_MAX_OPEN/" "$dir/lib/runner/zurl.conf.template"
        sed -i "s|^include={libdir}/internal.conf|libdir=$dir/lib\ninclude={libdir}/internal.conf|" "$dir/pushpin.conf"
    fi
    if [ "$kind" = pushpin ]; then
        (cd "$dir" && exec "$PUSHPIN_BIN" --config="$dir/pushpin.conf" --merge-output) \
            >"$dir/proxy.log" 2>&1 </dev/null &
    else
        (cd "$dir" && exec "$HOLDFAST_BIN" --config "$dir/pushpin.conf") \
            >"$dir/proxy.log" 2>&1 </dev/null &
    fi
    PROXY_PID=$!
    # The test target answers / and 404s the rest; the origins answer any plain request with 200.
    if [ "$mode" = test ]; then READY_PATH=/; else READY_PATH=/ready; fi
    wait_ready "$PROXY_PORT" "$PROXY_PID" "$target" "$dir/proxy.log"
    sleep "$SETTLE_S"
    if [ "$target" = pushpin-raised ] && ! grep -q "^max_open_requests=$ZURL_MAX_OPEN\$" "$dir/run/zurl.conf" 2>/dev/null; then
        die "pushpin did not take zurl.conf from $dir/lib (max_open_requests not raised)"
    fi
}

stop_proxy() {
    stop_tree "$PROXY_PID"
    PROXY_PID=""
}

# --- scenarios -----------------------------------------------------------------------------

declare -A RES
RUNS=()

jfield() { sed -n "s/.*\"$2\":\\([-0-9.a-z]*\\).*/\\1/p" <<<"$1" | head -n1; }
jobject() { sed -n "s/.*\"$2\":\\({[^}]*}\\).*/\\1/p" <<<"$1" | head -n1; }
kib_to_mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }

# Runs bench-ws in the foreground with a bound; its JSON goes to <name>.json.
client() {
    local name=$1
    shift
    timeout "$RUN_MAX_S" "$WSCLIENT" "$@" --clk-tck "$CLK_TCK" \
        >"$WORK/$name.json" 2>"$WORK/$name.err" &
    CLIENT_PID=$!
    local rc=0
    wait "$CLIENT_PID" || rc=$?
    CLIENT_PID=""
    return "$rc"
}

# Log lines at warning level or above from a proxy's logs, timestamps and ids cut, as
# "<count> <line>" for each distinct line.
proxy_warnings() {
    local dir=$1
    cat "$dir/proxy.log" "$dir"/log/*.log 2>/dev/null \
        | grep -iE '\[(warn|warning|error|err|crit)\]' \
        | sed -E 's/[0-9]{4}-[0-9]{2}-[0-9]{2}[ T][0-9:.]+ ?//; s/[0-9a-f]{8}-[0-9a-f-]{27}/<id>/g' \
        | cut -c1-300 | sort | uniq -c | sort -rn | head -n 8 || true
}

# Records what every row records once its client is done, and stops the proxy.
finish_row() {
    local name=$1 dir=$2
    RES[$name.procs]=$(tree_procs "$PROXY_PID")
    RES[$name.warnings]=$(proxy_warnings "$dir")
    RES[$name.log_lines]=$({ cat "$dir/proxy.log" "$dir"/log/*.log 2>/dev/null || true; } | wc -l)
    kill -0 "$PROXY_PID" 2>/dev/null || RES[$name.died]=1
    stop_proxy
    sed 's/^/  /' "$WORK/$name.err" >&2 || true
    log "$name: ${RES[$name.json]:-failed}"
    RUNS+=("$name")
}

run_echo() {
    local target=$1 mode=$2 name="$1.echo.$2" dir="$WORK/$1.echo.$2" port pid_args=()
    log "$target: echo through $mode, $CLIENTS clients, ${DURATION}s"
    if [ "$target" = direct ]; then
        port=$PLAIN_PORT
        pid_args=(--proxy-pid "$PLAIN_BACKEND_PID")
    else
        start_proxy "$target" "$dir" "$mode"
        port=$PROXY_PORT
        pid_args=(--proxy-pid "$PROXY_PID")
    fi
    if client "$name" --scenario echo --target "127.0.0.1:$port" --path /echo \
        --clients "$CLIENTS" --duration "$DURATION" --warmup "$WARMUP" --size "$SIZE" \
        --concurrency "$CONCURRENCY" "${pid_args[@]}"; then
        RES[$name.json]=$(cat "$WORK/$name.json")
    else
        RES[$name.json]=""
        RES[$name.failed]=$(tail -n 3 "$WORK/$name.err" | tr '\n' ' ')
    fi
    if [ "$target" = direct ]; then
        sed 's/^/  /' "$WORK/$name.err" >&2 || true
        log "$name: ${RES[$name.json]:-failed}"
        RUNS+=("$name")
    else
        finish_row "$name" "$dir"
    fi
}

run_fanout() {
    local target=$1 mode=$2 n=$3 name="$1.fanout.$2.$3" dir="$WORK/$1.fanout.$2.$3" route
    case "$mode" in
        test) route="test" ;;
        *) route="grip-$mode" ;;
    esac
    log "$target: fan-out to $n connections ($mode), $PUBLISHES publishes"
    start_proxy "$target" "$dir" "$route"
    if client "$name" --scenario fanout --target "127.0.0.1:$PROXY_PORT" \
        --control "127.0.0.1:$CONTROL_PORT" --path /ws --channel bench --clients "$n" \
        --publishes "$PUBLISHES" --batch "$BATCH" --size "$FANOUT_SIZE" \
        --concurrency "$CONCURRENCY" --open-max "$OPEN_MAX_S" --drain-max "$DRAIN_MAX_S" \
        --proxy-pid "$PROXY_PID"; then
        RES[$name.json]=$(cat "$WORK/$name.json")
    else
        RES[$name.json]=""
        RES[$name.failed]=$(tail -n 3 "$WORK/$name.err" | tr '\n' ' ')
    fi
    finish_row "$name" "$dir"
}

run_idle() {
    local target=$1 mode=$2 n=$3 name="$1.idle.$2.$3" dir="$WORK/$1.idle.$2.$3" i fds_base
    log "$target: $n idle connections ($mode)"
    start_proxy "$target" "$dir" "$mode"
    RES[$name.rss_base]=$(tree_status_kb VmRSS "$PROXY_PID")
    fds_base=$(tree_fds "$PROXY_PID")
    RES[$name.fds_base]=$fds_base
    rm -f "$WORK/$name.ready" "$WORK/$name.release"
    timeout "$RUN_MAX_S" "$WSCLIENT" --scenario idle --target "127.0.0.1:$PROXY_PORT" --path /idle \
        --clients "$n" --concurrency "$CONCURRENCY" --open-max "$OPEN_MAX_S" --ready-file "$WORK/$name.ready" \
        --release-file "$WORK/$name.release" --hold-max 300 --proxy-pid "$PROXY_PID" \
        --clk-tck "$CLK_TCK" >"$WORK/$name.json" 2>"$WORK/$name.err" &
    CLIENT_PID=$!
    for ((i = 0; i < RUN_MAX_S * 10; i++)); do
        [ -f "$WORK/$name.ready" ] && break
        kill -0 "$CLIENT_PID" 2>/dev/null || break
        sleep 0.1
    done
    if [ -f "$WORK/$name.ready" ]; then
        sleep "$SETTLE_S"
        RES[$name.rss_held]=$(tree_status_kb VmRSS "$PROXY_PID")
        RES[$name.fds_held]=$(tree_fds "$PROXY_PID")
        touch "$WORK/$name.release"
    fi
    local rc=0
    wait "$CLIENT_PID" || rc=$?
    CLIENT_PID=""
    if [ "$rc" = 0 ] && [ -s "$WORK/$name.json" ]; then
        RES[$name.json]=$(cat "$WORK/$name.json")
    else
        RES[$name.json]=""
        RES[$name.failed]="exit $rc: $(tail -n 3 "$WORK/$name.err" | tr '\n' ' ')"
    fi
    # The proxy has let go of the connections once its descriptor count is back near the baseline.
    for ((i = 0; i < 200; i++)); do
        [ "$(tree_fds "$PROXY_PID")" -le $((fds_base + 20)) ] && break
        sleep 0.1
    done
    sleep "$SETTLE_S"
    RES[$name.rss_after]=$(tree_status_kb VmRSS "$PROXY_PID")
    RES[$name.fds_after]=$(tree_fds "$PROXY_PID")
    RES[$name.hwm]=$(tree_status_kb VmHWM "$PROXY_PID")
    finish_row "$name" "$dir"
}

# --- main ----------------------------------------------------------------------------------

CLK_TCK=$(getconf CLK_TCK)
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
if [ "$SKIP_HOLDFAST" = 0 ] && [ "$NO_BUILD" = 0 ]; then
    log "building holdfast (release)"
    (cd "$MAIN" && env -u CARGO_TARGET_DIR cargo build --release --quiet) || die "holdfast build failed"
fi
if [ "$SKIP_HOLDFAST" = 0 ] && [ ! -x "$HOLDFAST_BIN" ]; then
    die "no holdfast binary at $HOLDFAST_BIN (or use --skip-holdfast)"
fi
# Every row runs the same holdfast even if the repository's binary is rebuilt during the run.
HOLDFAST_COMMIT=$(git_commit)
HOLDFAST_BUILT=""
if [ "$SKIP_HOLDFAST" = 0 ]; then
    HOLDFAST_BUILT=$(stat -c %y "$HOLDFAST_BIN" | cut -d. -f1)
    cp "$HOLDFAST_BIN" "$WORK/holdfast"
    HOLDFAST_BIN="$WORK/holdfast"
fi
if [ "$SKIP_PUSHPIN" = 0 ]; then
    command -v "$PUSHPIN_BIN" >/dev/null || die "pushpin not found (apt-get install -y pushpin, or use --skip-pushpin)"
    [ -f "$PUSHPIN_LIBDIR/runner/zurl.conf.template" ] || die "no zurl.conf.template under $PUSHPIN_LIBDIR (set PUSHPIN_LIBDIR)"
fi
log "building bench tools (release)"
CARGO_TARGET_DIR="$HERE/target" cargo build --release --quiet --manifest-path "$HERE/Cargo.toml" \
    || die "bench build failed"
WSCLIENT="$HERE/target/release/bench-ws"
WSBACKEND="$HERE/target/release/bench-ws-backend"

free_port; PLAIN_PORT=$FREE_PORT
"$WSBACKEND" --port "$PLAIN_PORT" >"$WORK/backend-plain.log" 2>&1 </dev/null &
PLAIN_BACKEND_PID=$!
READY_PATH=/ready
wait_ready "$PLAIN_PORT" "$PLAIN_BACKEND_PID" "bench-ws-backend" "$WORK/backend-plain.log"
free_port; GRIP_PORT=$FREE_PORT
"$WSBACKEND" --port "$GRIP_PORT" --grip >"$WORK/backend-grip.log" 2>&1 </dev/null &
GRIP_BACKEND_PID=$!
wait_ready "$GRIP_PORT" "$GRIP_BACKEND_PID" "bench-ws-backend --grip" "$WORK/backend-grip.log"

TARGETS=()
[ "$SKIP_HOLDFAST" = 0 ] && TARGETS+=(holdfast)
if [ "$SKIP_PUSHPIN" = 0 ]; then
    IFS=, read -r -a variants <<<"$PUSHPIN_VARIANTS"
    for v in "${variants[@]}"; do TARGETS+=("pushpin-$v"); done
fi
[ ${#TARGETS[@]} -gt 0 ] || die "nothing to measure"

if want echo && [ "$NO_DIRECT" = 0 ]; then run_echo direct origin; fi
ONCE_DONE=" "
for target in "${TARGETS[@]}"; do
    # Delivery caps change nothing for echo or idle connections: those run once per proxy.
    first=0
    [[ $ONCE_DONE != *" ${target%%-*} "* ]] && first=1
    ONCE_DONE="$ONCE_DONE${target%%-*} "
    if want echo && [ $first = 1 ]; then
        run_echo "$target" passthrough
        run_echo "$target" over_http
    fi
    if want fanout; then
        for entry in "${FANOUT_LIST[@]}"; do run_fanout "$target" "${entry%%:*}" "${entry#*:}"; done
    fi
    if want idle && [ $first = 1 ]; then
        run_idle "$target" passthrough "$IDLE"
        run_idle "$target" over_http "$IDLE"
    fi
done

# --- report --------------------------------------------------------------------------------

label() {
    case "$1" in
        direct) echo "direct (no proxy)" ;;
        holdfast) echo holdfast ;;
        pushpin-raised) echo "pushpin (rate 1000000, hwm 10000000, zurl $ZURL_MAX_OPEN)" ;;
        pushpin-defaults) echo "pushpin (defaults: 2500/25000, zurl 2000)" ;;
    esac
}
ms() { awk -v u="$1" 'BEGIN { if (u == "") print "—"; else printf "%.2f", u / 1000 }'; }
num() { awk -v x="$1" -v f="$2" 'BEGIN { if (x == "" || x == "null") print "—"; else printf f, x }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || b + 0 == 0) print "—"; else printf "%.1f×", a / b }'; }
notes() {
    local name=$1 out=""
    [ -n "${RES[$name.failed]:-}" ] && out="client failed: ${RES[$name.failed]}"
    [ -n "${RES[$name.died]:-}" ] && out="$out proxy died"
    echo "$out"
}
# "yes"/"**no**" for a condition awk evaluates on two numbers; "—" when one is missing.
verdict() {
    awk -v a="$1" -v b="$2" -v op="$3" 'BEGIN {
        if (a == "" || b == "" || a == "null" || b == "null") { print "—"; exit }
        ok = (op == ">=") ? (a + 0 >= b + 0) : (a + 0 <= b + 0)
        print ok ? "yes" : "**no**" }'
}
mode_label() {
    case "$1" in
        origin) echo "—" ;;
        passthrough) echo "passthrough" ;;
        over_http) echo "over_http" ;;
        test) echo "test target /ws" ;;
    esac
}

STAMP=$(date -u +%Y-%m-%dT%H:%M:%SZ)
REPORT="$WORK/report.md"
{
    echo "# WebSocket benchmark, $STAMP"
    echo
    echo "- machine: $(nproc) cores ($(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)), kernel $(uname -r);" \
        "load average before the run: $LOAD_BEFORE, after: $(cut -d' ' -f1-3 /proc/loadavg)"
    if [ "$SKIP_HOLDFAST" = 0 ]; then
        echo "- holdfast: commit $HOLDFAST_COMMIT when the run started, binary built $HOLDFAST_BUILT" \
            "(copied at the start; uncommitted changes are not noted); its defaults (no message_rate cap)"
    fi
    if [ "$SKIP_PUSHPIN" = 0 ]; then
        echo "- pushpin: $("$PUSHPIN_BIN" --version 2>/dev/null | head -n1 || echo unknown) (Debian, with condure + zurl)"
    fi
    echo "- all on 127.0.0.1, nothing pinned; RLIMIT_NOFILE $NOFILE per process; proxies at log_level=$LOG_LEVEL;" \
        "a fresh proxy for every row; origin: bench-ws-backend (1 thread; plain echo, and --grip for fan-out);" \
        "client: bench-ws (1 thread), connections spread over 64 source addresses 127.0.1.x, $CONCURRENCY opens in flight"
    echo "- proxy CPU = utime+stime (+cutime+cstime) of the proxy's process tree over the measured phase;" \
        "RSS = sum of VmRSS over that tree"
    echo
    if want echo; then
        echo "## Echo round-trips: $CLIENTS WebSocket clients, one ${SIZE}-byte text message in flight each"
        echo
        echo "Each client sends a masked text message, waits for its echo (checked byte for byte), and sends" \
            "the next at once. ${WARMUP} s warmup, then ${DURATION} s measured. Latency: from the write of a" \
            "message to the read of its echo. Errors: failed opens, closes, resets, wrong echoes, echoes" \
            "older than 5 s (the connection is then reopened). passthrough: route \`* 127.0.0.1:<origin>\`;" \
            "over_http: \`* 127.0.0.1:<origin>,over_http\` (each message becomes a POST to the origin)."
        echo
        echo "| proxy | route | clients | round-trips/s | p50 ms | p99 ms | max ms | errors | proxy CPU s | CPU µs/round-trip | notes |"
        echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"
        for name in "${RUNS[@]}"; do
            [[ $name == *.echo.* ]] || continue
            j=${RES[$name.json]:-}
            t=${name%%.*} m=${name##*.}
            note=$(notes "$name")
            if [ -n "$j" ] && [ "$(jfield "$j" errors_total)" != 0 ]; then
                note="$note errors $(jobject "$j" error_kinds) ($(jfield "$j" errors_total) including warmup)"
            fi
            printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' \
                "$(label "$t")" "$(mode_label "$m")" "$(jfield "$j" clients)" \
                "$(num "$(jfield "$j" round_trips_per_s)" %.0f)" "$(ms "$(jfield "$j" p50_us)")" \
                "$(ms "$(jfield "$j" p99_us)")" "$(ms "$(jfield "$j" max_us)")" "$(jfield "$j" errors)" \
                "$(jfield "$j" proxy_cpu_s)" "$(jfield "$j" proxy_cpu_us_per_round_trip)" "${note:-—}"
        done
        echo
        echo "The direct row's CPU column is the origin's. Its round-trips/s is what client and origin" \
            "manage alone on this machine, an upper bound for any proxy row."
        echo
    fi
    if want fanout; then
        echo "## ws-message fan-out: N connections on one channel, $PUBLISHES messages of $FANOUT_SIZE bytes"
        echo
        echo "Connections opened $CONCURRENCY at a time (a failed open is tried again, up to 3 attempts;" \
            "open errors counts every failure; opens still pending ${OPEN_MAX_S} s after the first are" \
            "counted as open timeouts and not retried), then primed: a probe published every 2 s until every" \
            "connection has received one. Then $PUBLISHES messages (\`m <seq> <send ns> <padding>\`) are" \
            "published flat out, $BATCH \`ws-message\` items per POST, one POST at a time. Each connection" \
            "keeps a bitmap of what it got, so loss and duplicates are exact. The row ends when every" \
            "connection has every message, or 5 s pass with no message of any kind (late probes included)" \
            "after the last publish, or" \
            "${DRAIN_MAX_S} s after it. Deliveries/s = messages received / (last receipt − first publish" \
            "sent). Latency: from just before the POST carrying the message was written to its receipt." \
            "Modes: passthrough = route to \`bench-ws-backend --grip\`, which accepts the GRIP extension" \
            "and subscribes each connection with \`c:{\"type\":\"subscribe\",...}\` (the proxy holds 2" \
            "sockets per connection); test = route \`* test\`, path \`/ws?channel=bench\`, the proxy's" \
            "built-in endpoint (1 socket per connection); over_http = the GRIP origin through" \
            "WebSocket-over-HTTP (it answers OPEN with the subscribe)."
        echo
        echo "| proxy | mode | N asked | connected | prime s | publish s | expected | received | lost | deliveries/s | p50 ms | p99 ms | max ms | proxy CPU s | CPU µs/delivery | open errors | notes |"
        echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
        for name in "${RUNS[@]}"; do
            [[ $name == *.fanout.* ]] || continue
            j=${RES[$name.json]:-}
            t=${name%%.*} rest=${name#*.fanout.}
            m=${rest%%.*} n=${rest##*.}
            note=$(notes "$name")
            if [ -n "$j" ]; then
                [ "$(jfield "$j" unprimed)" != 0 ] && note="$note $(jfield "$j" unprimed) unprimed"
                [ "$(jfield "$j" dropped)" != 0 ] && note="$note $(jfield "$j" dropped) dropped $(jobject "$j" drop_kinds)"
                [ "$(jfield "$j" duplicates)" != 0 ] && note="$note $(jfield "$j" duplicates) duplicates"
                [ "$(jfield "$j" publish_errors)" != 0 ] && note="$note publish errors $(jobject "$j" publish_error_kinds)"
                [ "$(jfield "$j" open_errors)" != 0 ] && note="$note open errors $(jobject "$j" open_error_kinds)"
            fi
            printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' \
                "$(label "$t")" "$(mode_label "$m")" "$n" "$(jfield "$j" measured)" \
                "$(jfield "$j" prime_s)" "$(jfield "$j" publish_s)" "$(jfield "$j" expected)" \
                "$(jfield "$j" received)" "$(jfield "$j" lost)" \
                "$(num "$(jfield "$j" deliveries_per_s)" %.0f)" "$(ms "$(jfield "$j" p50_us)")" \
                "$(ms "$(jfield "$j" p99_us)")" "$(ms "$(jfield "$j" max_us)")" \
                "$(jfield "$j" proxy_cpu_s)" "$(jfield "$j" proxy_cpu_us_per_delivery)" \
                "$(jfield "$j" open_errors)" "${note:-—}"
        done
        echo
    fi
    if want idle; then
        echo "## Idle WebSocket connections"
        echo
        echo "Connections opened $CONCURRENCY at a time, no retries, then held with no traffic. Opens/s =" \
            "connections held / (last 101 − first connect). Open errors: connect failures, resets, non-101" \
            "answers, opens older than 30 s. KiB per connection = (RSS held − RSS baseline) / connections" \
            "held (RSS only: kernel socket buffers are not in it). \"After\" is read once the proxy's" \
            "descriptor count is back near its baseline after the client closed everything, plus ${SETTLE_S} s." \
            "passthrough: the proxy holds the client socket and one to the origin; over_http: the client" \
            "socket only (the origin saw one OPEN POST per connection)."
        echo
        echo "| proxy | route | N asked | held | opens/s | open errors | RSS baseline MiB | RSS held MiB | KiB per connection | RSS after MiB | proxy fds held | procs | notes |"
        echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
        for name in "${RUNS[@]}"; do
            [[ $name == *.idle.* ]] || continue
            j=${RES[$name.json]:-}
            t=${name%%.*} rest=${name#*.idle.}
            m=${rest%%.*} n=${rest##*.}
            held=$(jfield "$j" held)
            base=${RES[$name.rss_base]:-} hrss=${RES[$name.rss_held]:-} after=${RES[$name.rss_after]:-}
            per=$(awk -v b="$base" -v h="$hrss" -v n="$held" 'BEGIN { if (n > 0 && h != "") printf "%.2f", (h - b) / n; else print "—" }')
            RES[$name.per]=$per
            note=$(notes "$name")
            if [ -n "$j" ]; then
                [ "$(jfield "$j" open_errors)" != 0 ] && note="$note open errors $(jobject "$j" open_error_kinds)"
                [ "$(jfield "$j" dropped_while_held)" != 0 ] && note="$note $(jfield "$j" dropped_while_held) dropped while held $(jobject "$j" drop_kinds)"
            fi
            if [ "$t" = holdfast ] && [ -n "$after" ] && [ "${base:-0}" -gt 0 ] && [ $((after * 10)) -gt $((base * 11)) ]; then
                note="$note RSS after is $(awk -v a="$after" -v b="$base" 'BEGIN { printf "%.0f", a / b * 100 }') % of the baseline"
            fi
            printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' \
                "$(label "$t")" "$(mode_label "$m")" "$n" "$held" "$(num "$(jfield "$j" opens_per_s)" %.0f)" \
                "$(jfield "$j" open_errors)" "$(kib_to_mib "${base:-0}")" "$(kib_to_mib "${hrss:-0}")" \
                "$per" "$(kib_to_mib "${after:-0}")" "${RES[$name.fds_held]:-—}" \
                "${RES[$name.procs]:-—}" "${note:-—}"
        done
        echo
    fi
    if [ "$SKIP_HOLDFAST" = 0 ]; then
        echo "## Targets"
        echo
        echo "| target | measured | met |"
        echo "|---|---|---|"
        if want echo; then
            for m in passthrough over_http; do
                h=$(jfield "${RES[holdfast.echo.$m.json]:-}" round_trips_per_s)
                p=$(jfield "${RES[pushpin-raised.echo.$m.json]:-${RES[pushpin-defaults.echo.$m.json]:-}}" round_trips_per_s)
                if [ "$m" = passthrough ]; then
                    r=$(awk -v a="$h" -v b="$p" 'BEGIN { if (a != "" && b != "" && b > 0) printf "%.2f", a / b }')
                    echo "| echo passthrough, holdfast ≥ 3× pushpin round-trips/s | $(num "$h" %.0f) vs $(num "$p" %.0f): $(ratio "$h" "$p") | $(verdict "$r" 3 ">=") |"
                else
                    echo "| echo over_http (informational) | $(num "$h" %.0f) vs $(num "$p" %.0f): $(ratio "$h" "$p") | — |"
                fi
            done
        fi
        if want fanout; then
            for entry in "${FANOUT_LIST[@]}"; do
                m=${entry%%:*} n=${entry#*:}
                hj=${RES[holdfast.fanout.$m.$n.json]:-}
                pj=${RES[pushpin-raised.fanout.$m.$n.json]:-}
                h=$(jfield "$hj" deliveries_per_s) p=$(jfield "$pj" deliveries_per_s)
                r=$(awk -v a="$h" -v b="$p" 'BEGIN { if (a != "" && b != "" && b > 0) printf "%.2f", a / b }')
                echo "| fan-out $m $n: holdfast ≥ 500,000 deliveries/s | $(num "$h" %.0f) | $(verdict "$h" 500000 ">=") |"
                if [ -n "$pj" ]; then
                    echo "| fan-out $m $n: holdfast ≥ 10× pushpin (rate cap raised) | $(num "$h" %.0f) vs $(num "$p" %.0f): $(ratio "$h" "$p") | $(verdict "$r" 10 ">=") |"
                fi
                echo "| fan-out $m $n: holdfast loss 0 | $(jfield "$hj" lost) lost of $(jfield "$hj" expected) | $(verdict "$(jfield "$hj" lost)" 0 "<=") |"
                echo "| fan-out $m $n: holdfast p99 ≤ 1 s | $(ms "$(jfield "$hj" p99_us)") ms | $(verdict "$(jfield "$hj" p99_us)" 1000000 "<=") |"
            done
        fi
        if want idle; then
            for m in passthrough over_http; do
                per=${RES[holdfast.idle.$m.$IDLE.per]:-}
                # A few hundred connections measure the allocator's granularity, not the proxy.
                v="— ($IDLE connections are too few to judge)"
                [ "$IDLE" -ge 1000 ] && v=$(verdict "$per" 4 "<=")
                echo "| idle $m: holdfast ≤ 4 KiB RSS per connection | $per KiB | $v |"
            done
        fi
        echo
    fi
    echo "Proxy log lines at warning level or above (count, line; up to 8 distinct per row), and each" \
        "row's total log lines:"
    echo
    for name in "${RUNS[@]}"; do
        [[ $name == direct.* ]] && continue
        if [ -n "${RES[$name.warnings]:-}" ]; then
            printf '    %s (%s log lines):\n' "$name" "${RES[$name.log_lines]:-?}"
            while IFS= read -r line; do printf '        %s\n' "$line"; done <<<"${RES[$name.warnings]}"
        else
            printf '    %s (%s log lines): none\n' "$name" "${RES[$name.log_lines]:-?}"
        fi
    done
    echo
    echo "Raw bench-ws output:"
    echo
    for name in "${RUNS[@]}"; do
        echo "    $name: ${RES[$name.json]:-failed: ${RES[$name.failed]:-}}"
        if [[ $name == *.idle.* ]]; then
            echo "    $name: rss_kb base=${RES[$name.rss_base]:-} held=${RES[$name.rss_held]:-} after=${RES[$name.rss_after]:-} hwm_sum=${RES[$name.hwm]:-} fds base=${RES[$name.fds_base]:-} held=${RES[$name.fds_held]:-} after=${RES[$name.fds_after]:-}"
        fi
    done
} >"$REPORT"

mkdir -p "$HERE/results"
DEST="$HERE/results/ws-$(date -u +%Y-%m-%d-%H%M%S).md"
cp "$REPORT" "$DEST.tmp" && mv "$DEST.tmp" "$DEST"
cat "$REPORT"
log "saved $DEST"
