#!/usr/bin/env bash
# Measures GRIP delivery: fan-out to held streams, idle held streams (memory, open rate) and
# long-poll cycles, for holdfast and Debian's pushpin side by side in one run on this machine.
# Prints Markdown tables and saves them under bench/results/grip-<UTC date-time>.md. See
# bench/README.md.
set -euo pipefail

usage() {
    cat <<'EOF'
usage: bench/run-grip.sh [--subscribers 5000,10000] [--publishes 200] [--publish-parallel 1]
                         [--size 100] [--idle 15000] [--concurrency 1000] [--lp-clients 500]
                         [--lp-duration 10] [--lp-batch 100] [--scenarios fanout,idle,longpoll]
                         [--log-level 2] [--small] [--skip-holdfast] [--skip-pushpin]
                         [--pushpin-variants raised,unlimited,defaults] [--no-build]

  --subscribers LIST   held streams per fan-out run, comma-separated (default 5000,10000)
  --publishes N        messages published per fan-out run, one POST each (default 200)
  --publish-parallel K POSTs in flight while publishing (default 1: sequential)
  --size N             bytes per published message, "\n" included (default 100)
  --idle N             held streams in the idle scenario (default 15000)
  --concurrency N      stream opens in flight at once (default 1000)
  --lp-clients N       long-poll clients (default 500)
  --lp-duration S      measured long-poll seconds, after 1 s warmup (default 10)
  --lp-batch N         long-poll items per publish POST (default 100)
  --scenarios LIST     which scenarios to run (default fanout,idle,longpoll)
  --log-level N        [runner] log_level for both proxies (default 2, Pushpin's stock level)
  --small              validation run: --subscribers 200 --idle 200 --lp-clients 50 --lp-duration 3
  --skip-holdfast      do not build or measure holdfast
  --skip-pushpin       do not measure Debian's pushpin at all
  --pushpin-variants LIST  pushpin configurations to measure (default raised,unlimited,defaults):
                       raised: message_rate=1000000 message_hwm=10000000; unlimited: both unset
                       (pushpin's code default, -1); defaults: 2500 and 25000 as in the stock
                       pushpin.conf. Idle streams are measured on the first variant only.
  --no-build           never build holdfast (otherwise it is built when missing or older than 10 min)
EOF
}

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
MAIN=$(cd "$HERE/.." && pwd)
SUBSCRIBERS=5000,10000
PUBLISHES=200
PUBLISH_PARALLEL=1
SIZE=100
IDLE=15000
CONCURRENCY=1000
LP_CLIENTS=500
LP_DURATION=10
LP_BATCH=100
SCENARIOS=fanout,idle,longpoll
LOG_LEVEL=2
SKIP_HOLDFAST=0
SKIP_PUSHPIN=0
PUSHPIN_VARIANTS=raised,unlimited,defaults
NO_BUILD=0
HOLDFAST_BIN=${HOLDFAST_BIN:-$MAIN/target/release/holdfast}
PUSHPIN_BIN=${PUSHPIN_BIN:-pushpin}
READY_TIMEOUT_S=30
READY_PATH=/ready
STOP_GRACE_S=8
# Seconds the proxy sits idle before its baseline memory is read, and after a phase before the
# next reading, so allocations in flight settle.
SETTLE_S=2
# Longest any one bench-fanout run may take.
RUN_MAX_S=900
# A holdfast binary older than this many minutes is rebuilt (others build it often).
BUILD_AGE_MIN=10

while [ $# -gt 0 ]; do
    case "$1" in
        --subscribers) SUBSCRIBERS=${2:?--subscribers needs a value}; shift 2 ;;
        --subscribers=*) SUBSCRIBERS=${1#*=}; shift ;;
        --publishes) PUBLISHES=${2:?--publishes needs a value}; shift 2 ;;
        --publishes=*) PUBLISHES=${1#*=}; shift ;;
        --publish-parallel) PUBLISH_PARALLEL=${2:?--publish-parallel needs a value}; shift 2 ;;
        --publish-parallel=*) PUBLISH_PARALLEL=${1#*=}; shift ;;
        --size) SIZE=${2:?--size needs a value}; shift 2 ;;
        --size=*) SIZE=${1#*=}; shift ;;
        --idle) IDLE=${2:?--idle needs a value}; shift 2 ;;
        --idle=*) IDLE=${1#*=}; shift ;;
        --concurrency) CONCURRENCY=${2:?--concurrency needs a value}; shift 2 ;;
        --concurrency=*) CONCURRENCY=${1#*=}; shift ;;
        --lp-clients) LP_CLIENTS=${2:?--lp-clients needs a value}; shift 2 ;;
        --lp-clients=*) LP_CLIENTS=${1#*=}; shift ;;
        --lp-duration) LP_DURATION=${2:?--lp-duration needs a value}; shift 2 ;;
        --lp-duration=*) LP_DURATION=${1#*=}; shift ;;
        --lp-batch) LP_BATCH=${2:?--lp-batch needs a value}; shift 2 ;;
        --lp-batch=*) LP_BATCH=${1#*=}; shift ;;
        --scenarios) SCENARIOS=${2:?--scenarios needs a value}; shift 2 ;;
        --scenarios=*) SCENARIOS=${1#*=}; shift ;;
        --log-level) LOG_LEVEL=${2:?--log-level needs a value}; shift 2 ;;
        --log-level=*) LOG_LEVEL=${1#*=}; shift ;;
        --small) SUBSCRIBERS=200; IDLE=200; LP_CLIENTS=50; LP_DURATION=3; shift ;;
        --skip-holdfast) SKIP_HOLDFAST=1; shift ;;
        --skip-pushpin) SKIP_PUSHPIN=1; shift ;;
        --pushpin-variants) PUSHPIN_VARIANTS=${2:?--pushpin-variants needs a value}; shift 2 ;;
        --pushpin-variants=*) PUSHPIN_VARIANTS=${1#*=}; shift ;;
        --no-build) NO_BUILD=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "run-grip.sh: unknown argument $1" >&2; usage >&2; exit 2 ;;
    esac
done
for pair in "publishes:$PUBLISHES" "publish-parallel:$PUBLISH_PARALLEL" "size:$SIZE" "idle:$IDLE" \
    "concurrency:$CONCURRENCY" "lp-clients:$LP_CLIENTS" "lp-duration:$LP_DURATION" \
    "lp-batch:$LP_BATCH" "log-level:$LOG_LEVEL"; do
    if ! [[ ${pair#*:} =~ ^[0-9]+$ ]]; then
        echo "run-grip.sh: --${pair%%:*} must be a whole number" >&2
        exit 2
    fi
done
if ! [[ $SUBSCRIBERS =~ ^[0-9]+(,[0-9]+)*$ ]]; then
    echo "run-grip.sh: --subscribers must be whole numbers separated by commas" >&2
    exit 2
fi
if ! [[ $SCENARIOS =~ ^(fanout|idle|longpoll)(,(fanout|idle|longpoll))*$ ]]; then
    echo "run-grip.sh: --scenarios takes fanout, idle and longpoll, separated by commas" >&2
    exit 2
fi
if ! [[ $PUSHPIN_VARIANTS =~ ^(raised|unlimited|defaults)(,(raised|unlimited|defaults))*$ ]]; then
    echo "run-grip.sh: --pushpin-variants takes raised, unlimited and defaults, separated by commas" >&2
    exit 2
fi
IFS=, read -r -a SUBSCRIBER_LIST <<<"$SUBSCRIBERS"
for n in "${SUBSCRIBER_LIST[@]}" "$IDLE" "$LP_CLIENTS"; do
    if [ "$n" -lt 1 ] || [ "$n" -gt 60000 ]; then
        echo "run-grip.sh: stream and client counts must be 1..60000" >&2
        exit 2
    fi
done
if [ "$LP_DURATION" -lt 1 ] || [ "$LP_DURATION" -gt 3600 ] || [ "$PUBLISHES" -lt 1 ]; then
    echo "run-grip.sh: need 1 <= lp-duration <= 3600 and publishes >= 1" >&2
    exit 2
fi
want() { case ",$SCENARIOS," in *",$1,"*) return 0 ;; *) return 1 ;; esac; }

log() { printf 'run-grip.sh: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

# Every held stream is a descriptor in the client and in the proxy: take the hard limit.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
NOFILE=$(ulimit -n)

WORK=$(mktemp -d /tmp/holdfast-grip-bench.XXXXXX)
STREAM_BACKEND_PID=""
RESPONSE_BACKEND_PID=""
PROXY_PID=""
CLIENT_PID=""
KEEP_WORK=${BENCH_KEEP:-0}

# --- processes, ports, probes, config (shared with the other benchmark script) ----------------

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
    stop_tree "$STREAM_BACKEND_PID"
    stop_tree "$RESPONSE_BACKEND_PID"
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

# --- config --------------------------------------------------------------------------------


# Starts proxy <target> (holdfast | pushpin-raised | pushpin-unlimited | pushpin-defaults) in <dir>
# in front of the origin on <backend_port>, and gives it SETTLE_S to finish starting (pushpin
# answers 502 to holds for a moment after its first 200); sets PROXY_PID, PROXY_PORT, CONTROL_PORT.
start_proxy() {
    # The raised hwm exceeds subscribers x publishes of the runs here: pushpin queues every delivery
    # while publishes keep coming (see the note in the report), so a smaller one would decide.
    local target=$1 dir=$2 backend_port=$3 kind rate=1000000 hwm=10000000
    kind=${target%%-*}
    case "$target" in
        # holdfast runs with its defaults: no rate cap (a cap of 1,000,000/s would itself decide the
        # 10,000-stream fan-out, 2,000,000 deliveries), bounded per-connection queues instead.
        holdfast) rate="unset"; hwm="unset" ;;
        pushpin-unlimited) rate="unset"; hwm="unset" ;;
        pushpin-defaults) rate=2500; hwm=25000 ;;
    esac
    free_port; PROXY_PORT=$FREE_PORT
    free_port; CONTROL_PORT=$FREE_PORT
    write_config "$kind" "$dir" "$PROXY_PORT" "$CONTROL_PORT" "$backend_port" "$rate" "$hwm"
    if [ "$kind" = pushpin ]; then
        (cd "$dir" && exec "$PUSHPIN_BIN" --config="$dir/pushpin.conf" --merge-output) \
            >"$dir/proxy.log" 2>&1 </dev/null &
    else
        (cd "$dir" && exec "$HOLDFAST_BIN" --config "$dir/pushpin.conf") \
            >"$dir/proxy.log" 2>&1 </dev/null &
    fi
    PROXY_PID=$!
    wait_ready "$PROXY_PORT" "$PROXY_PID" "$target" "$dir/proxy.log"
    sleep "$SETTLE_S"
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

# Runs bench-fanout in the foreground with a bound; its JSON goes to <name>.json.
client() {
    local name=$1
    shift
    timeout "$RUN_MAX_S" "$FANOUT" "$@" --proxy-pid "$PROXY_PID" --clk-tck "$CLK_TCK" \
        >"$WORK/$name.json" 2>"$WORK/$name.err" &
    CLIENT_PID=$!
    local rc=0
    wait "$CLIENT_PID" || rc=$?
    CLIENT_PID=""
    return "$rc"
}

# Log lines at warning level or above from a proxy's logs (holdfast's output, pushpin's log files),
# timestamps cut, as "<count> <line>" for each distinct line.
proxy_warnings() {
    local dir=$1
    cat "$dir/proxy.log" "$dir"/log/*.log 2>/dev/null \
        | grep -iE '\[(warn|warning|error|err|crit)\]' \
        | sed -E 's/[0-9]{4}-[0-9]{2}-[0-9]{2}[ T][0-9:.]+ ?//' | cut -c1-300 \
        | sort | uniq -c | sort -rn | head -n 8 || true
}

run_fanout() {
    local target=$1 n=$2 name="$1.fanout.$2" dir="$WORK/$1.fanout.$2"
    log "$target: fan-out to $n streams, $PUBLISHES publishes"
    start_proxy "$target" "$dir" "$STREAM_PORT"
    RES[$name.fds_before]=$(tree_fds "$PROXY_PID")
    if client "$name" --scenario fanout --target "127.0.0.1:$PROXY_PORT" \
        --control "127.0.0.1:$CONTROL_PORT" --path /stream --subscribers "$n" \
        --publishes "$PUBLISHES" --publish-parallel "$PUBLISH_PARALLEL" --size "$SIZE" \
        --concurrency "$CONCURRENCY"; then
        RES[$name.json]=$(cat "$WORK/$name.json")
    else
        RES[$name.json]=""
        RES[$name.failed]=$(tail -n 3 "$WORK/$name.err" | tr '\n' ' ')
        log "$target: bench-fanout failed: ${RES[$name.failed]}"
    fi
    RES[$name.procs]=$(tree_procs "$PROXY_PID")
    RES[$name.warnings]=$(proxy_warnings "$dir")
    kill -0 "$PROXY_PID" 2>/dev/null || RES[$name.died]=1
    stop_proxy
    sed 's/^/  /' "$WORK/$name.err" >&2 || true
    log "$target: ${RES[$name.json]:-failed}"
    RUNS+=("$name")
}

run_idle() {
    local target=$1 n=$2 name="$1.idle.$2" dir="$WORK/$1.idle.$2" i fds_base
    log "$target: $n idle held streams"
    start_proxy "$target" "$dir" "$STREAM_PORT"
    RES[$name.rss_base]=$(tree_status_kb VmRSS "$PROXY_PID")
    fds_base=$(tree_fds "$PROXY_PID")
    RES[$name.fds_base]=$fds_base
    rm -f "$WORK/$name.ready" "$WORK/$name.release"
    timeout "$RUN_MAX_S" "$FANOUT" --scenario idle --target "127.0.0.1:$PROXY_PORT" --path /stream \
        --subscribers "$n" --concurrency "$CONCURRENCY" --ready-file "$WORK/$name.ready" \
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
    # The proxy has let go of the streams once its descriptor count is back near the baseline.
    for ((i = 0; i < 200; i++)); do
        [ "$(tree_fds "$PROXY_PID")" -le $((fds_base + 20)) ] && break
        sleep 0.1
    done
    sleep "$SETTLE_S"
    RES[$name.rss_after]=$(tree_status_kb VmRSS "$PROXY_PID")
    RES[$name.fds_after]=$(tree_fds "$PROXY_PID")
    RES[$name.hwm]=$(tree_status_kb VmHWM "$PROXY_PID")
    RES[$name.procs]=$(tree_procs "$PROXY_PID")
    RES[$name.warnings]=$(proxy_warnings "$dir")
    kill -0 "$PROXY_PID" 2>/dev/null || RES[$name.died]=1
    stop_proxy
    sed 's/^/  /' "$WORK/$name.err" >&2 || true
    log "$target: ${RES[$name.json]:-failed}; RSS kB base ${RES[$name.rss_base]} held ${RES[$name.rss_held]:-?} after ${RES[$name.rss_after]}"
    RUNS+=("$name")
}

run_longpoll() {
    local target=$1 n=$2 name="$1.longpoll.$2" dir="$WORK/$1.longpoll.$2"
    log "$target: $n long-poll clients for ${LP_DURATION}s"
    start_proxy "$target" "$dir" "$RESPONSE_PORT"
    if client "$name" --scenario longpoll --target "127.0.0.1:$PROXY_PORT" \
        --control "127.0.0.1:$CONTROL_PORT" --path /poll --clients "$n" --duration "$LP_DURATION" \
        --warmup 1 --batch "$LP_BATCH" --size "$SIZE" --timeout 10; then
        RES[$name.json]=$(cat "$WORK/$name.json")
    else
        RES[$name.json]=""
        RES[$name.failed]=$(tail -n 3 "$WORK/$name.err" | tr '\n' ' ')
    fi
    RES[$name.procs]=$(tree_procs "$PROXY_PID")
    RES[$name.warnings]=$(proxy_warnings "$dir")
    kill -0 "$PROXY_PID" 2>/dev/null || RES[$name.died]=1
    stop_proxy
    sed 's/^/  /' "$WORK/$name.err" >&2 || true
    log "$target: ${RES[$name.json]:-failed}"
    RUNS+=("$name")
}


# --- main ----------------------------------------------------------------------------------

CLK_TCK=$(getconf CLK_TCK)
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
if [ "$SKIP_HOLDFAST" = 0 ] && [ "$NO_BUILD" = 0 ]; then
    if [ ! -x "$HOLDFAST_BIN" ] || [ -n "$(find "$HOLDFAST_BIN" -mmin +"$BUILD_AGE_MIN" 2>/dev/null)" ]; then
        log "building holdfast (release): binary missing or older than $BUILD_AGE_MIN min"
        (cd "$MAIN" && env -u CARGO_TARGET_DIR cargo build --release --quiet) || die "holdfast build failed"
    else
        log "using holdfast built $(stat -c %y "$HOLDFAST_BIN" | cut -d. -f1)"
    fi
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
if [ "$SKIP_PUSHPIN" = 0 ] && ! command -v "$PUSHPIN_BIN" >/dev/null; then
    die "pushpin not found (apt-get install -y pushpin, or use --skip-pushpin)"
fi
log "building bench tools (release)"
CARGO_TARGET_DIR="$HERE/target" cargo build --release --quiet --manifest-path "$HERE/Cargo.toml" \
    || die "bench build failed"
FANOUT="$HERE/target/release/bench-fanout"
BACKEND="$HERE/target/release/bench-backend"

free_port; STREAM_PORT=$FREE_PORT
"$BACKEND" --port "$STREAM_PORT" --grip stream >"$WORK/backend-stream.log" 2>&1 </dev/null &
STREAM_BACKEND_PID=$!
wait_ready "$STREAM_PORT" "$STREAM_BACKEND_PID" "bench-backend --grip stream" "$WORK/backend-stream.log"
free_port; RESPONSE_PORT=$FREE_PORT
"$BACKEND" --port "$RESPONSE_PORT" --grip response >"$WORK/backend-response.log" 2>&1 </dev/null &
RESPONSE_BACKEND_PID=$!
wait_ready "$RESPONSE_PORT" "$RESPONSE_BACKEND_PID" "bench-backend --grip response" "$WORK/backend-response.log"

TARGETS=()
[ "$SKIP_HOLDFAST" = 0 ] && TARGETS+=(holdfast)
if [ "$SKIP_PUSHPIN" = 0 ]; then
    IFS=, read -r -a variants <<<"$PUSHPIN_VARIANTS"
    for v in "${variants[@]}"; do TARGETS+=("pushpin-$v"); done
fi
[ ${#TARGETS[@]} -gt 0 ] || die "nothing to measure"

IDLE_DONE=" "
for target in "${TARGETS[@]}"; do
    if want fanout; then
        for n in "${SUBSCRIBER_LIST[@]}"; do run_fanout "$target" "$n"; done
    fi
    # Delivery caps change nothing for idle streams, so each proxy runs that once.
    if want idle && [[ $IDLE_DONE != *" ${target%%-*} "* ]]; then
        run_idle "$target" "$IDLE"
        IDLE_DONE="$IDLE_DONE${target%%-*} "
    fi
    if want longpoll; then run_longpoll "$target" "$LP_CLIENTS"; fi
done

# --- report --------------------------------------------------------------------------------


label() {
    case "$1" in
        holdfast) echo holdfast ;;
        pushpin-raised) echo "pushpin (rate 1000000, hwm 10000000)" ;;
        pushpin-unlimited) echo "pushpin (rate/hwm unset)" ;;
        pushpin-defaults) echo "pushpin (defaults 2500/25000)" ;;
    esac
}
ms() { awk -v u="$1" 'BEGIN { if (u == "") print "—"; else printf "%.1f", u / 1000 }'; }
num() { awk -v x="$1" -v f="$2" 'BEGIN { if (x == "" || x == "null") print "—"; else printf f, x }'; }
notes() {
    local name=$1 out=""
    [ -n "${RES[$name.failed]:-}" ] && out="client failed: ${RES[$name.failed]}"
    [ -n "${RES[$name.died]:-}" ] && out="$out proxy died"
    echo "$out"
}

STAMP=$(date -u +%Y-%m-%dT%H:%M:%SZ)
REPORT="$WORK/report.md"
{
    echo "# GRIP benchmark, $STAMP"
    echo
    echo "- machine: $(nproc) cores ($(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)), kernel $(uname -r);" \
        "load average before the run: $LOAD_BEFORE, after: $(cut -d' ' -f1-3 /proc/loadavg)"
    if [ "$SKIP_HOLDFAST" = 0 ]; then
        echo "- holdfast: commit $HOLDFAST_COMMIT when the run started, binary built $HOLDFAST_BUILT" \
            "(copied at the start; uncommitted changes are not noted); its defaults: message_rate and" \
            "message_hwm unset (no cap; each held connection queues at most 1024 messages)"
    fi
    if [ "$SKIP_PUSHPIN" = 0 ]; then
        echo "- pushpin: $("$PUSHPIN_BIN" --version 2>/dev/null | head -n1 || echo unknown) (Debian, with condure + zurl)"
    fi
    echo "- all on 127.0.0.1, nothing pinned; RLIMIT_NOFILE $NOFILE per process; proxies at log_level=$LOG_LEVEL;" \
        "a fresh proxy for every row; origin: bench-backend --grip (1 thread each for stream and response holds)"
    echo "- proxy CPU = utime+stime (+cutime+cstime) of the proxy's process tree over the measured phase;" \
        "RSS = sum of VmRSS over that tree"
    echo
    if want fanout; then
        echo "## Fan-out: N held streams on one channel, $PUBLISHES publishes of $SIZE bytes"
        echo
        echo "Streams opened $CONCURRENCY at a time and primed (a publish every stream must receive) before" \
            "measuring. Publishing: one POST per message on a new connection, $PUBLISH_PARALLEL in flight" \
            "($( [ "$PUBLISH_PARALLEL" = 1 ] && echo sequential || echo parallel)), flat out." \
            "A stream whose open fails is tried again, up to 3 attempts (open errors counts every failure)." \
            "Deliveries/s = messages received over all streams / (last receipt − first publish sent)." \
            "Latency: from just before the POST was written to the receipt of the message's line."
        echo
        echo "| proxy | N asked | streams | publish s | expected | received | lost | deliveries/s | p50 ms | p99 ms | max ms | proxy CPU s | CPU µs/delivery | open errors | notes |"
        echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
        for name in "${RUNS[@]}"; do
            [[ $name == *.fanout.* ]] || continue
            j=${RES[$name.json]:-}
            t=${name%%.*} n=${name##*.}
            note=$(notes "$name")
            if [ -n "$j" ]; then
                [ "$(jfield "$j" unprimed)" != 0 ] && note="$note $(jfield "$j" unprimed) unprimed"
                [ "$(jfield "$j" dropped_streams)" != 0 ] && note="$note $(jfield "$j" dropped_streams) streams dropped $(jobject "$j" drop_kinds)"
                [ "$(jfield "$j" duplicates)" != 0 ] && note="$note $(jfield "$j" duplicates) duplicates"
                [ "$(jfield "$j" publish_errors)" != 0 ] && note="$note publish errors $(jobject "$j" publish_error_kinds)"
                [ "$(jfield "$j" open_errors)" != 0 ] && note="$note open errors $(jobject "$j" open_error_kinds), $(jfield "$j" open_retries) retried (up to $(jfield "$j" open_attempts) attempts per stream)"
            fi
            printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' \
                "$(label "$t")" "$n" "$(jfield "$j" streams_measured)" "$(jfield "$j" publish_s)" \
                "$(jfield "$j" expected)" "$(jfield "$j" received)" "$(jfield "$j" lost)" \
                "$(num "$(jfield "$j" deliveries_per_s)" %.0f)" "$(ms "$(jfield "$j" p50_us)")" \
                "$(ms "$(jfield "$j" p99_us)")" "$(ms "$(jfield "$j" max_us)")" \
                "$(jfield "$j" proxy_cpu_s)" "$(jfield "$j" proxy_cpu_us_per_delivery)" \
                "$(jfield "$j" open_errors)" "${note:-—}"
        done
        echo
    fi
    if want idle; then
        echo "## Idle held streams"
        echo
        echo "Streams opened $CONCURRENCY at a time and held with no traffic. Opens/s = streams held /" \
            "(last stream's response head − first connect). Open errors: connect failures, resets," \
            "non-200 answers (502 included), opens older than 30 s. Memory per held stream =" \
            "(RSS held − RSS baseline) / streams held. \"After\" is read once the proxy's descriptor count" \
            "is back near its baseline after the client closed everything, plus ${SETTLE_S} s."
        echo
        echo "| proxy | N asked | held | opens/s | open errors | RSS baseline MiB | RSS held MiB | KiB per stream | RSS after MiB | after / baseline | proxy fds held | procs | notes |"
        echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
        for name in "${RUNS[@]}"; do
            [[ $name == *.idle.* ]] || continue
            j=${RES[$name.json]:-}
            t=${name%%.*} n=${name##*.}
            held=$(jfield "$j" held)
            base=${RES[$name.rss_base]:-} hrss=${RES[$name.rss_held]:-} after=${RES[$name.rss_after]:-}
            per=$(awk -v b="$base" -v h="$hrss" -v n="$held" 'BEGIN { if (n > 0 && h != "") printf "%.2f", (h - b) / n; else print "—" }')
            ratio=$(awk -v b="$base" -v a="$after" 'BEGIN { if (b > 0 && a != "") printf "%.0f%%", a / b * 100; else print "—" }')
            note=$(notes "$name")
            if [ -n "$j" ]; then
                [ "$(jfield "$j" open_errors)" != 0 ] && note="$note open errors $(jobject "$j" open_error_kinds)"
                [ "$(jfield "$j" dropped_while_held)" != 0 ] && note="$note $(jfield "$j" dropped_while_held) dropped while held $(jobject "$j" drop_kinds)"
            fi
            if [ "$t" = holdfast ] && [ -n "$after" ] && [ "${base:-0}" -gt 0 ] && [ $((after * 10)) -gt $((base * 11)) ]; then
                note="$note **RSS after is more than 10 % above the baseline**"
            fi
            printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' \
                "$(label "$t")" "$n" "$held" "$(num "$(jfield "$j" opens_per_s)" %.0f)" \
                "$(jfield "$j" open_errors)" "$(kib_to_mib "${base:-0}")" "$(kib_to_mib "${hrss:-0}")" \
                "$per" "$(kib_to_mib "${after:-0}")" "$ratio" "${RES[$name.fds_held]:-—}" \
                "${RES[$name.procs]:-—}" "${note:-—}"
        done
        echo
    fi
    if want longpoll; then
        echo "## Long-poll cycles"
        echo
        echo "Each client long-polls its own channel lp-<i> on a keep-alive connection and polls again as soon" \
            "as a response arrives. One publisher thread posts one http-response item per channel per" \
            "round, $LP_BATCH items per POST, flat out (items for a channel with no poll waiting are lost;" \
            "only completed cycles count). 1 s warmup, then ${LP_DURATION} s measured. Errors: non-200" \
            "(502 included), resets, closes before a response, polls unanswered after 10 s. Latency: from" \
            "just before the POST carrying the item was written to the end of the response."
        echo
        echo "| proxy | clients | cycles/s | cycles | errors | p50 ms | p99 ms | publish POSTs/s | proxy CPU s | CPU µs/cycle | notes |"
        echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
        for name in "${RUNS[@]}"; do
            [[ $name == *.longpoll.* ]] || continue
            j=${RES[$name.json]:-}
            t=${name%%.*} n=${name##*.}
            note=$(notes "$name")
            if [ -n "$j" ]; then
                [ "$(jfield "$j" errors)" != 0 ] && note="$note errors $(jobject "$j" error_kinds)"
                [ "$(jfield "$j" publish_errors)" != 0 ] && note="$note publish errors $(jobject "$j" publish_error_kinds)"
            fi
            printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' \
                "$(label "$t")" "$n" "$(num "$(jfield "$j" cycles_per_s)" %.0f)" "$(jfield "$j" cycles)" \
                "$(jfield "$j" errors)" "$(ms "$(jfield "$j" p50_us)")" "$(ms "$(jfield "$j" p99_us)")" \
                "$(num "$(jfield "$j" posts_per_s)" %.0f)" "$(jfield "$j" proxy_cpu_s)" \
                "$(jfield "$j" proxy_cpu_us_per_cycle)" "${note:-—}"
        done
        echo
    fi
    if [[ " ${TARGETS[*]} " == *" pushpin-raised "* || " ${TARGETS[*]} " == *" pushpin-defaults "* ]]; then
        echo "Pushpin with message_rate set (the raised and defaults rows): its handler hands deliveries to a" \
            "rate limiter that runs them in batches every 25 ms, and each new publish re-arms that 25 ms" \
            "timer (RateLimiter::setup calls setInterval on the running timer), so while publishes arrive" \
            "more often than every 25 ms nothing is delivered until publishing pauses, or until message_hwm" \
            "is reached (a publish refused for the hwm does not re-arm it). This is why pushpin's fan-out" \
            "deliveries start only after the last publish and why flat-out long-polling completes few or no" \
            "cycles there. With message_rate unset (the unlimited rows) there is no batching."
        echo
    fi
    echo "Proxy log lines at warning level or above (count, line; up to 8 distinct per row):"
    echo
    for name in "${RUNS[@]}"; do
        if [ -n "${RES[$name.warnings]:-}" ]; then
            printf '    %s:\n' "$name"
            while IFS= read -r line; do printf '        %s\n' "$line"; done <<<"${RES[$name.warnings]}"
        else
            printf '    %s: none\n' "$name"
        fi
    done
    echo
    echo "Raw bench-fanout output:"
    echo
    for name in "${RUNS[@]}"; do
        echo "    $name: ${RES[$name.json]:-failed: ${RES[$name.failed]:-}}"
        if [[ $name == *.idle.* ]]; then
            echo "    $name: rss_kb base=${RES[$name.rss_base]:-} held=${RES[$name.rss_held]:-} after=${RES[$name.rss_after]:-} hwm_sum=${RES[$name.hwm]:-} fds base=${RES[$name.fds_base]:-} held=${RES[$name.fds_held]:-} after=${RES[$name.fds_after]:-}"
        fi
    done
} >"$REPORT"

mkdir -p "$HERE/results"
DEST="$HERE/results/grip-$(date -u +%Y-%m-%d-%H%M%S).md"
cp "$REPORT" "$DEST.tmp" && mv "$DEST.tmp" "$DEST"
cat "$REPORT"
log "saved $DEST"
