#!/usr/bin/env bash
# Measures ZeroMQ publish ingest: items pushed into a proxy's PULL socket or published to its SUB
# socket, delivered to held HTTP streams, for holdfast and Debian's pushpin side by side in one run
# on this machine. Prints Markdown tables and saves them under bench/results/zmq-<UTC date-time>.md.
# See bench/README.md.
set -euo pipefail

usage() {
    cat <<'EOF'
usage: bench/run-zmq.sh [--streams 1000] [--items-one 1000] [--items-distinct 1000000] [--size 100]
                        [--sockets pull,sub] [--channels one,distinct] [--concurrency 100]
                        [--holdfast-variants defaults,raised] [--pushpin-variants raised,unlimited]
                        [--log-level 2] [--small] [--skip-holdfast] [--skip-pushpin] [--no-build]

  --streams N          held streams in every row (default 1000)
  --items-one N        items published in a one-channel row, each to all streams (default 1000)
  --items-distinct N   items published in a distinct-channel row, each to one stream (default 1000000:
                       at 200000 a holdfast row lasted ~0.3 s, and its ramp-up and the drain of
                       the last batch weighed a third of the window)
  --size N             bytes per published message line, "\n" included (default 100)
  --sockets LIST       which inputs: pull (PUSH -> PULL), sub (XPUB -> SUB) (default pull,sub)
  --channels LIST      one: every stream on one channel; distinct: stream i on its own channel,
                       item k to stream k mod N (default one,distinct)
  --concurrency N      stream opens in flight at once (default 100)
  --holdfast-variants LIST  defaults: message_rate/message_hwm unset (holdfast's default, no cap);
                       raised: message_rate=1000000 message_hwm=10000000, as pushpin (default both)
  --pushpin-variants LIST   raised: message_rate=1000000 message_hwm=10000000; unlimited: both
                       unset (pushpin's code default); defaults: the stock 2500/25000
                       (default raised,unlimited)
  --log-level N        [runner] log_level for both proxies (default 2, Pushpin's stock level)
  --small              validation run: --streams 100 --items-one 200 --items-distinct 2000
  --skip-holdfast      do not build or measure holdfast
  --skip-pushpin       do not measure Debian's pushpin
  --no-build           never build holdfast (otherwise it is built when missing or older than 10 min)
EOF
}

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
MAIN=$(cd "$HERE/.." && pwd)
STREAMS=1000
ITEMS_ONE=1000
ITEMS_DISTINCT=1000000
SIZE=100
SOCKETS=pull,sub
CHANNELS=one,distinct
CONCURRENCY=100
HOLDFAST_VARIANTS=defaults,raised
PUSHPIN_VARIANTS=raised,unlimited
LOG_LEVEL=2
SKIP_HOLDFAST=0
SKIP_PUSHPIN=0
NO_BUILD=0
HOLDFAST_BIN=${HOLDFAST_BIN:-$MAIN/target/release/holdfast}
PUSHPIN_BIN=${PUSHPIN_BIN:-pushpin}
READY_TIMEOUT_S=30
READY_PATH=/ready
STOP_GRACE_S=8
# Pause after a proxy answers before the row starts (pushpin answers 502 to holds for a moment
# after its first 200).
SETTLE_S=2
# Longest any one bench-zmq run may take.
RUN_MAX_S=900
BUILD_AGE_MIN=10

while [ $# -gt 0 ]; do
    case "$1" in
        --streams) STREAMS=${2:?--streams needs a value}; shift 2 ;;
        --streams=*) STREAMS=${1#*=}; shift ;;
        --items-one) ITEMS_ONE=${2:?--items-one needs a value}; shift 2 ;;
        --items-one=*) ITEMS_ONE=${1#*=}; shift ;;
        --items-distinct) ITEMS_DISTINCT=${2:?--items-distinct needs a value}; shift 2 ;;
        --items-distinct=*) ITEMS_DISTINCT=${1#*=}; shift ;;
        --size) SIZE=${2:?--size needs a value}; shift 2 ;;
        --size=*) SIZE=${1#*=}; shift ;;
        --sockets) SOCKETS=${2:?--sockets needs a value}; shift 2 ;;
        --sockets=*) SOCKETS=${1#*=}; shift ;;
        --channels) CHANNELS=${2:?--channels needs a value}; shift 2 ;;
        --channels=*) CHANNELS=${1#*=}; shift ;;
        --concurrency) CONCURRENCY=${2:?--concurrency needs a value}; shift 2 ;;
        --concurrency=*) CONCURRENCY=${1#*=}; shift ;;
        --holdfast-variants) HOLDFAST_VARIANTS=${2:?--holdfast-variants needs a value}; shift 2 ;;
        --holdfast-variants=*) HOLDFAST_VARIANTS=${1#*=}; shift ;;
        --pushpin-variants) PUSHPIN_VARIANTS=${2:?--pushpin-variants needs a value}; shift 2 ;;
        --pushpin-variants=*) PUSHPIN_VARIANTS=${1#*=}; shift ;;
        --log-level) LOG_LEVEL=${2:?--log-level needs a value}; shift 2 ;;
        --log-level=*) LOG_LEVEL=${1#*=}; shift ;;
        --small) STREAMS=100; ITEMS_ONE=200; ITEMS_DISTINCT=2000; shift ;;
        --skip-holdfast) SKIP_HOLDFAST=1; shift ;;
        --skip-pushpin) SKIP_PUSHPIN=1; shift ;;
        --no-build) NO_BUILD=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "run-zmq.sh: unknown argument $1" >&2; usage >&2; exit 2 ;;
    esac
done
for pair in "streams:$STREAMS" "items-one:$ITEMS_ONE" "items-distinct:$ITEMS_DISTINCT" \
    "size:$SIZE" "concurrency:$CONCURRENCY" "log-level:$LOG_LEVEL"; do
    if ! [[ ${pair#*:} =~ ^[0-9]+$ ]]; then
        echo "run-zmq.sh: --${pair%%:*} must be a whole number" >&2
        exit 2
    fi
done
if [ "$STREAMS" -lt 1 ] || [ "$STREAMS" -gt 20000 ] || [ "$ITEMS_ONE" -lt 1 ] || [ "$ITEMS_DISTINCT" -lt 1 ]; then
    echo "run-zmq.sh: need 1 <= streams <= 20000 and at least 1 item" >&2
    exit 2
fi
if ! [[ $SOCKETS =~ ^(pull|sub)(,(pull|sub))*$ ]]; then
    echo "run-zmq.sh: --sockets takes pull and sub, separated by commas" >&2
    exit 2
fi
if ! [[ $CHANNELS =~ ^(one|distinct)(,(one|distinct))*$ ]]; then
    echo "run-zmq.sh: --channels takes one and distinct, separated by commas" >&2
    exit 2
fi
if ! [[ $HOLDFAST_VARIANTS =~ ^(defaults|raised)(,(defaults|raised))*$ ]]; then
    echo "run-zmq.sh: --holdfast-variants takes defaults and raised, separated by commas" >&2
    exit 2
fi
if ! [[ $PUSHPIN_VARIANTS =~ ^(raised|unlimited|defaults)(,(raised|unlimited|defaults))*$ ]]; then
    echo "run-zmq.sh: --pushpin-variants takes raised, unlimited and defaults, separated by commas" >&2
    exit 2
fi

log() { printf 'run-zmq.sh: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
NOFILE=$(ulimit -n)

WORK=$(mktemp -d /tmp/holdfast-zmq-bench.XXXXXX)
BACKEND_PID=""
PROXY_PID=""
CLIENT_PID=""
KEEP_WORK=${BENCH_KEEP:-0}

# shellcheck source=lib.sh
. "$HERE/lib.sh"

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [ -n "$CLIENT_PID" ]; then
        kill -TERM "$CLIENT_PID" 2>/dev/null || true
        wait "$CLIENT_PID" 2>/dev/null || true
    fi
    stop_tree "$PROXY_PID"
    stop_tree "$BACKEND_PID"
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

# Starts proxy <target> (holdfast-defaults | holdfast-raised | pushpin-raised | pushpin-unlimited |
# pushpin-defaults) in <dir> in front of the origin; sets PROXY_PID, PROXY_PORT, PULL_SPEC, SUB_SPEC.
start_proxy() {
    local target=$1 dir=$2 kind rate=1000000 hwm=10000000
    kind=${target%%-*}
    case "$target" in
        holdfast-defaults | pushpin-unlimited) rate="unset"; hwm="unset" ;;
        pushpin-defaults) rate=2500; hwm=25000 ;;
    esac
    free_port; PROXY_PORT=$FREE_PORT
    free_port; local control=$FREE_PORT
    write_config "$kind" "$dir" "$PROXY_PORT" "$control" "$BACKEND_PORT" "$rate" "$hwm"
    PULL_SPEC=$(sed -n 's/^push_in_spec=//p' "$dir/pushpin.conf")
    SUB_SPEC=$(sed -n 's/^push_in_sub_specs=//p' "$dir/pushpin.conf")
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

declare -A RES
RUNS=()

jfield() { sed -n "s/.*\"$2\":\\([-0-9.a-z]*\\).*/\\1/p" <<<"$1" | head -n1; }
jobject() { sed -n "s/.*\"$2\":\\({[^}]*}\\).*/\\1/p" <<<"$1" | head -n1; }

proxy_warnings() {
    local dir=$1
    cat "$dir/proxy.log" "$dir"/log/*.log 2>/dev/null \
        | grep -iE '\[(warn|warning|error|err|crit)\]' \
        | sed -E 's/[0-9]{4}-[0-9]{2}-[0-9]{2}[ T][0-9:.]+ ?//' | cut -c1-300 \
        | sort | uniq -c | sort -rn | head -n 8 || true
}

# One row: a fresh proxy, bench-zmq against it, the proxy stopped.
run_row() {
    local target=$1 socket=$2 channels=$3 name="$1.$2.$3" dir="$WORK/$1.$2.$3" items spec
    items=$ITEMS_ONE
    [ "$channels" = distinct ] && items=$ITEMS_DISTINCT
    log "$target: $socket, $channels channel(s), $STREAMS streams, $items items"
    start_proxy "$target" "$dir"
    spec=$PULL_SPEC
    [ "$socket" = sub ] && spec=$SUB_SPEC
    local cmd=("$ZMQ" --target "127.0.0.1:$PROXY_PORT" --socket "$socket" --spec "$spec"
        --channels "$channels" --streams "$STREAMS" --items "$items" --size "$SIZE"
        --concurrency "$CONCURRENCY" --proxy-pid "$PROXY_PID" --clk-tck "$CLK_TCK")
    RES[$name.cmd]="bench-zmq ${cmd[*]:1}"
    timeout "$RUN_MAX_S" "${cmd[@]}" >"$WORK/$name.json" 2>"$WORK/$name.err" &
    CLIENT_PID=$!
    local rc=0
    wait "$CLIENT_PID" || rc=$?
    CLIENT_PID=""
    if [ "$rc" = 0 ] && [ -s "$WORK/$name.json" ]; then
        RES[$name.json]=$(cat "$WORK/$name.json")
    else
        RES[$name.json]=""
        RES[$name.failed]="exit $rc: $(tail -n 3 "$WORK/$name.err" | tr '\n' ' ')"
    fi
    RES[$name.warnings]=$(proxy_warnings "$dir")
    kill -0 "$PROXY_PID" 2>/dev/null || RES[$name.died]=1
    stop_proxy
    sed 's/^/  /' "$WORK/$name.err" >&2 || true
    log "$target: ${RES[$name.json]:-failed ${RES[$name.failed]:-}}"
    RUNS+=("$name")
}

# --- main ----------------------------------------------------------------------------------

CLK_TCK=$(getconf CLK_TCK)
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
# Share of time some runnable task waited for a CPU over the last minute (Linux PSI), "" without it.
cpu_pressure() { sed -n 's/^some avg10=[0-9.]* avg60=\([0-9.]*\).*/\1 %/p' /proc/pressure/cpu 2>/dev/null || true; }
PRESSURE_BEFORE=$(cpu_pressure)
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
log "building bench tools (release; the first build compiles libzmq)"
CARGO_TARGET_DIR="$HERE/target" cargo build --release --quiet --features zmq --manifest-path "$HERE/Cargo.toml" \
    || die "bench build failed"
ZMQ="$HERE/target/release/bench-zmq"
BACKEND="$HERE/target/release/bench-backend"

free_port; BACKEND_PORT=$FREE_PORT
"$BACKEND" --port "$BACKEND_PORT" --grip stream >"$WORK/backend.log" 2>&1 </dev/null &
BACKEND_PID=$!
wait_ready "$BACKEND_PORT" "$BACKEND_PID" "bench-backend --grip stream" "$WORK/backend.log"

TARGETS=()
if [ "$SKIP_HOLDFAST" = 0 ]; then
    IFS=, read -r -a variants <<<"$HOLDFAST_VARIANTS"
    for v in "${variants[@]}"; do TARGETS+=("holdfast-$v"); done
fi
if [ "$SKIP_PUSHPIN" = 0 ]; then
    IFS=, read -r -a variants <<<"$PUSHPIN_VARIANTS"
    for v in "${variants[@]}"; do TARGETS+=("pushpin-$v"); done
fi
[ ${#TARGETS[@]} -gt 0 ] || die "nothing to measure"
IFS=, read -r -a SOCKET_LIST <<<"$SOCKETS"
IFS=, read -r -a CHANNEL_LIST <<<"$CHANNELS"

for target in "${TARGETS[@]}"; do
    for socket in "${SOCKET_LIST[@]}"; do
        for channels in "${CHANNEL_LIST[@]}"; do
            run_row "$target" "$socket" "$channels"
        done
    done
done
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)
PRESSURE_AFTER=$(cpu_pressure)

# --- report --------------------------------------------------------------------------------

label() {
    case "$1" in
        holdfast-defaults) echo "holdfast (rate/hwm unset)" ;;
        holdfast-raised) echo "holdfast (rate 1000000, hwm 10000000)" ;;
        pushpin-raised) echo "pushpin (rate 1000000, hwm 10000000)" ;;
        pushpin-unlimited) echo "pushpin (rate/hwm unset)" ;;
        pushpin-defaults) echo "pushpin (defaults 2500/25000)" ;;
    esac
}
ms() { awk -v u="$1" 'BEGIN { if (u == "") print "—"; else printf "%.1f", u / 1000 }'; }
num() { awk -v x="$1" -v f="$2" 'BEGIN { if (x == "" || x == "null") print "—"; else printf f, x }'; }
notes() {
    local name=$1 j=${RES[$1.json]:-} out=""
    [ -n "${RES[$name.failed]:-}" ] && out="client failed: ${RES[$name.failed]}"
    [ -n "${RES[$name.died]:-}" ] && out="$out proxy died"
    if [ -n "$j" ]; then
        [ "$(jfield "$j" complete)" = false ] && out="$out incomplete (ended by quiet/drain bound)"
        [ "$(jfield "$j" unprimed)" != 0 ] && out="$out $(jfield "$j" unprimed) unprimed"
        [ "$(jfield "$j" subscriptions_complete)" = false ] && out="$out subscriptions incomplete"
        [ "$(jfield "$j" open_errors)" != 0 ] && out="$out open errors $(jobject "$j" open_error_kinds)"
        [ "$(jfield "$j" dropped_streams)" != 0 ] && out="$out $(jfield "$j" dropped_streams) streams dropped $(jobject "$j" drop_kinds)"
        [ "$(jfield "$j" duplicates)" != 0 ] && out="$out $(jfield "$j" duplicates) duplicates"
        [ "$(jfield "$j" misrouted)" != 0 ] && out="$out $(jfield "$j" misrouted) misrouted"
        [ "$(jfield "$j" send_errors)" != 0 ] && out="$out $(jfield "$j" send_errors) send errors"
    fi
    echo "${out:-—}"
}

STAMP=$(date -u +%Y-%m-%dT%H:%M:%SZ)
REPORT="$WORK/report.md"
{
    echo "# ZeroMQ ingest benchmark, $STAMP"
    echo
    echo "- machine: $(nproc) cores ($(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)), kernel $(uname -r);" \
        "load average before the run: $LOAD_BEFORE, after: $LOAD_AFTER; CPU pressure (PSI some, avg60)" \
        "before: ${PRESSURE_BEFORE:-n/a}, after: ${PRESSURE_AFTER:-n/a} (other work shares this machine)"
    if [ "$SKIP_HOLDFAST" = 0 ]; then
        echo "- holdfast: commit $HOLDFAST_COMMIT when the run started, binary built $HOLDFAST_BUILT" \
            "(copied at the start; uncommitted changes are not noted)"
    fi
    if [ "$SKIP_PUSHPIN" = 0 ]; then
        echo "- pushpin: $("$PUSHPIN_BIN" --version 2>/dev/null | head -n1 || echo unknown) (Debian, with condure + zurl)"
    fi
    echo "- all on 127.0.0.1, nothing pinned; RLIMIT_NOFILE $NOFILE per process; proxies at log_level=$LOG_LEVEL;" \
        "a fresh proxy for every row, same pushpin.conf keys for both (write_config in bench/lib.sh):" \
        "push_in_spec and push_in_sub_specs on tcp://127.0.0.1 (the SUB bound), message_rate and" \
        "message_hwm as in the row's label; origin: bench-backend --grip stream (answers every" \
        "/stream?channel=C with Grip-Hold: stream on C)"
    echo "- command: bench/run-zmq.sh --streams $STREAMS --items-one $ITEMS_ONE --items-distinct $ITEMS_DISTINCT" \
        "--size $SIZE --sockets $SOCKETS --channels $CHANNELS --concurrency $CONCURRENCY" \
        "--holdfast-variants $HOLDFAST_VARIANTS --pushpin-variants $PUSHPIN_VARIANTS --log-level $LOG_LEVEL"
    echo "- proxy CPU = utime+stime (+cutime+cstime) of the proxy's process tree from the first item sent to the end;" \
        "client CPU = bench-zmq's own (stream reader and publishing thread) over the same span; both in 10 ms ticks"
    echo
    echo "## Ingest: $STREAMS held streams, items of $SIZE bytes"
    echo
    echo "bench-zmq opens the streams ($CONCURRENCY opens in flight), then (SUB) waits until the proxy's" \
        "subscription for every channel in use has arrived on its XPUB, then publishes a priming item" \
        "(again every second) until every stream has one. Then one thread sends the items flat out:" \
        "pull = a PUSH socket connected to the proxy's PULL, one frame \`J{\"channel\":..,\"formats\":{\"http-stream\":..}}\`" \
        "per item (blocking send: PUSH waits while the pipe is full); sub = an XPUB connected to the" \
        "proxy's SUB, two frames \`[channel, J{\"formats\":..}]\` (send high-water mark 0, so nothing is" \
        "dropped on the publishing side). one: every stream on one channel, each item goes to all" \
        "$STREAMS streams ($ITEMS_ONE items); distinct: stream i on its own channel, item k to stream" \
        "k mod $STREAMS only ($ITEMS_DISTINCT items). Items/s = items sent / (last delivery − first send);" \
        "deliveries/s = items received over all streams / the same window. Latency: from just before" \
        "an item was handed to the socket (its time travels in its content) to the receipt of its line." \
        "A row ends when every stream has every item meant for it, or 30 s pass with no delivery after" \
        "the last send (pushpin with message_rate set delivers nothing until items stop coming in, so" \
        "the quiet bound counts from the last send). holdfast queues at most 1024 messages per held connection beyond what its" \
        "64 KiB write queue and the socket hold, and drops the oldest past that (its policy for slow" \
        "readers): a one-channel burst of 2,000 items of 100 bytes to 1,000 streams outran the" \
        "one-threaded client and lost 21 % in a trial run, so the one-channel rows send fewer; pushpin" \
        "with a raised message_hwm queues everything."
    echo
    echo "| proxy | socket | channels | streams | items | send s | items/s | deliveries/s | expected | received | lost | p50 ms | p99 ms | max ms | proxy CPU s | CPU µs/item | client CPU s | notes |"
    echo "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
    for name in "${RUNS[@]}"; do
        j=${RES[$name.json]:-}
        IFS=. read -r t socket channels <<<"$name"
        printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' \
            "$(label "$t")" "$socket" "$channels" "$(jfield "$j" streams_measured)" "$(jfield "$j" items)" \
            "$(jfield "$j" send_s)" "$(num "$(jfield "$j" items_per_s)" %.0f)" \
            "$(num "$(jfield "$j" deliveries_per_s)" %.0f)" "$(jfield "$j" expected)" \
            "$(jfield "$j" received)" "$(jfield "$j" lost)" "$(ms "$(jfield "$j" p50_us)")" \
            "$(ms "$(jfield "$j" p99_us)")" "$(ms "$(jfield "$j" max_us)")" \
            "$(jfield "$j" proxy_cpu_s)" "$(jfield "$j" proxy_cpu_us_per_item)" "$(jfield "$j" client_cpu_s)" \
            "$(notes "$name")"
    done
    echo
    if [ "$SKIP_HOLDFAST" = 0 ] && [ "$SKIP_PUSHPIN" = 0 ]; then
        echo "## holdfast ÷ pushpin, items/s (target: at least 10×)"
        echo
        echo "Each holdfast row against the pushpin variant with the most items/s in the same socket and" \
            "channel mode."
        echo
        echo "| holdfast | socket | channels | holdfast items/s | best pushpin items/s | pushpin variant | ratio | holdfast lost | pushpin lost | proxy CPU µs/item, holdfast / that pushpin |"
        echo "|---|---|---|---:|---:|---|---:|---:|---:|---:|"
        for name in "${RUNS[@]}"; do
            [[ $name == holdfast-* ]] || continue
            IFS=. read -r t socket channels <<<"$name"
            h=${RES[$name.json]:-} hr=$(jfield "${RES[$name.json]:-}" items_per_s)
            best="" best_rate="" best_lost="" best_cpu=""
            for other in "${RUNS[@]}"; do
                [[ $other == pushpin-*".$socket.$channels" ]] || continue
                pr=$(jfield "${RES[$other.json]:-}" items_per_s)
                [ -n "$pr" ] || continue
                if [ -z "$best_rate" ] || awk -v a="$pr" -v b="$best_rate" 'BEGIN { exit !(a > b) }'; then
                    best=${other%%.*} best_rate=$pr best_lost=$(jfield "${RES[$other.json]:-}" lost)
                    best_cpu=$(jfield "${RES[$other.json]:-}" proxy_cpu_us_per_item)
                fi
            done
            ratio=$(awk -v a="$hr" -v b="$best_rate" 'BEGIN { if (a != "" && b != "" && b > 0) printf "%.1f×", a / b; else print "—" }')
            printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s / %s |\n' "$(label "$t")" "$socket" "$channels" \
                "$(num "$hr" %.0f)" "$(num "$best_rate" %.0f)" "${best:+$(label "$best")}" "$ratio" \
                "$(jfield "$h" lost)" "${best_lost:-—}" "$(jfield "$h" proxy_cpu_us_per_item)" "${best_cpu:-—}"
        done
        echo
    fi
    if [ "$LOG_LEVEL" -ge 2 ] && [ "$SKIP_PUSHPIN" = 0 ]; then
        echo "At log_level=$LOG_LEVEL pushpin's handler writes one INFO line for every item it takes in" \
            "(\"publish channel=… receivers=…\"); holdfast logs publishes at debug level only." \
            "--log-level 1 removes that difference."
        echo
    fi
    if [[ ",$PUSHPIN_VARIANTS," == *,raised,* || ",$PUSHPIN_VARIANTS," == *,defaults,* ]] && [ "$SKIP_PUSHPIN" = 0 ]; then
        echo "Pushpin with message_rate set runs deliveries through a rate limiter in 25 ms batches, and" \
            "each publish it accepts re-arms that timer, so while items arrive faster than every 25 ms it" \
            "delivers nothing and queues them (see bench/README.md, \"Pushpin's rate limiter\"); the" \
            "unlimited rows have no limiter."
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
    echo "Command lines and raw bench-zmq output (ports are chosen per row):"
    echo
    for name in "${RUNS[@]}"; do
        echo "    $name: ${RES[$name.cmd]:-}"
        echo "    $name: ${RES[$name.json]:-failed: ${RES[$name.failed]:-}}"
    done
} >"$REPORT"

mkdir -p "$HERE/results"
DEST="$HERE/results/zmq-$(date -u +%Y-%m-%d-%H%M%S).md"
cp "$REPORT" "$DEST.tmp" && mv "$DEST.tmp" "$DEST"
cat "$REPORT"
log "saved $DEST"
