#!/usr/bin/env bash
# Measures plain HTTP proxying: the origin alone, holdfast in front of it, Debian's pushpin in front
# of it. Same origin, same load, same duration for each; prints a Markdown table and saves it under
# bench/results/. See bench/README.md.
set -euo pipefail

usage() {
    cat <<'EOF'
usage: bench/run.sh [--duration S] [--warmup S] [--connections N] [--log-level N]
                    [--skip-holdfast] [--skip-pushpin] [--no-build]

  --duration S      measured seconds per target (default 10)
  --warmup S        unmeasured seconds before each measurement (default 2)
  --connections N   keep-alive connections, one request in flight each (default 50)
  --log-level N     [runner] log_level for both proxies (default 2, Pushpin's stock level, which
                    writes an access-log line per request; 1 leaves only warnings)
  --skip-holdfast   do not build or measure holdfast
  --skip-pushpin    do not measure Debian's pushpin
  --no-build        use the holdfast binary already built (HOLDFAST_BIN, default target/release/holdfast)
EOF
}

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
MAIN=$(cd "$HERE/.." && pwd)
DURATION=10
WARMUP=2
CONNECTIONS=50
SKIP_HOLDFAST=0
SKIP_PUSHPIN=0
NO_BUILD=0
LOG_LEVEL=2
HOLDFAST_BIN=${HOLDFAST_BIN:-$MAIN/target/release/holdfast}
PUSHPIN_BIN=${PUSHPIN_BIN:-pushpin}
LOAD_THREADS=1
BACKEND_THREADS=1
READY_TIMEOUT_S=30
READY_PATH=/x
STOP_GRACE_S=8

while [ $# -gt 0 ]; do
    case "$1" in
        --duration) DURATION=${2:?--duration needs a value}; shift 2 ;;
        --duration=*) DURATION=${1#*=}; shift ;;
        --warmup) WARMUP=${2:?--warmup needs a value}; shift 2 ;;
        --warmup=*) WARMUP=${1#*=}; shift ;;
        --connections) CONNECTIONS=${2:?--connections needs a value}; shift 2 ;;
        --connections=*) CONNECTIONS=${1#*=}; shift ;;
        --log-level) LOG_LEVEL=${2:?--log-level needs a value}; shift 2 ;;
        --log-level=*) LOG_LEVEL=${1#*=}; shift ;;
        --skip-holdfast) SKIP_HOLDFAST=1; shift ;;
        --skip-pushpin) SKIP_PUSHPIN=1; shift ;;
        --no-build) NO_BUILD=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "run.sh: unknown argument $1" >&2; usage >&2; exit 2 ;;
    esac
done
for pair in "duration:$DURATION" "warmup:$WARMUP" "connections:$CONNECTIONS" "log-level:$LOG_LEVEL"; do
    if ! [[ ${pair#*:} =~ ^[0-9]+$ ]]; then
        echo "run.sh: --${pair%%:*} must be a whole number" >&2
        exit 2
    fi
done
if [ "$DURATION" -lt 1 ] || [ "$DURATION" -gt 3600 ] || [ "$WARMUP" -gt 600 ] \
    || [ "$CONNECTIONS" -lt 1 ] || [ "$CONNECTIONS" -gt 10000 ]; then
    echo "run.sh: need 1 <= duration <= 3600, warmup <= 600, 1 <= connections <= 10000" >&2
    exit 2
fi

log() { printf 'run.sh: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

WORK=$(mktemp -d /tmp/holdfast-bench.XXXXXX)
BACKEND_PID=""
PROXY_PID=""
LOAD_PID=""
KEEP_WORK=${BENCH_KEEP:-0}

# --- processes, ports, probes, config (shared with the other benchmark script) ----------------

# shellcheck source=lib.sh
. "$HERE/lib.sh"



# Sum of VmHWM (peak resident set, kB) over the members named in a tree_sample line.
tree_peak_kb() {
    local total=0 member pid kb
    for member in $1; do
        pid=${member%%:*}
        [ "$member" = "$pid" ] && continue
        kb=$(awk '/^VmHWM:/ {print $2}' "/proc/$pid/status" 2>/dev/null || true)
        total=$((total + ${kb:-0}))
    done
    echo "$total"
}


cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [ -n "$LOAD_PID" ]; then kill -TERM "$LOAD_PID" 2>/dev/null || true; fi
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

now_ns() { date +%s%N; }
sleep_until_ns() {
    local left=$(($1 - $(now_ns)))
    if [ "$left" -gt 0 ]; then sleep "$(awk -v n="$left" 'BEGIN { printf "%.3f", n / 1e9 }')"; fi
}

# --- config --------------------------------------------------------------------------------


# --- measuring -----------------------------------------------------------------------------

declare -A RES

jfield() { sed -n "s/.*\"$2\":\\([-0-9.]*\\).*/\\1/p" "$1"; }

# Runs the load against <port>; with a <root> pid also reads that process tree's CPU over the
# measured window and its peak RSS. Results land in RES[<name>.*].
measure() {
    local name=$1 port=$2 root=${3:-} out="$WORK/$1.json" t0 before="" after="" ticks
    log "measuring $name on port $port: ${WARMUP}s warmup + ${DURATION}s, $CONNECTIONS connections"
    t0=$(now_ns)
    timeout $((WARMUP + DURATION + 30)) "$LOAD" --target "127.0.0.1:$port" --path /x \
        --connections "$CONNECTIONS" --duration "$DURATION" --warmup "$WARMUP" \
        --threads "$LOAD_THREADS" >"$out" 2>"$WORK/$name.load.err" &
    LOAD_PID=$!
    if [ -n "$root" ]; then
        sleep_until_ns $((t0 + WARMUP * 1000000000))
        before=$(tree_sample "$root")
        sleep_until_ns $((t0 + (WARMUP + DURATION) * 1000000000))
        after=$(tree_sample "$root")
        RES[$name.peak_kb]=$(tree_peak_kb "$after")
        RES[$name.procs]=$(($(wc -w <<<"$after") - 1))
    fi
    if ! wait "$LOAD_PID"; then
        LOAD_PID=""
        cat "$WORK/$name.load.err" >&2 || true
        die "bench-load failed against $name"
    fi
    LOAD_PID=""
    [ -s "$out" ] || die "bench-load printed nothing against $name"
    RES[$name.json]=$(cat "$out")
    local key
    for key in requests errors non_2xx seconds rps p50_us p99_us max_us; do
        RES[$name.$key]=$(jfield "$out" "$key")
    done
    if [ -n "$root" ]; then
        ticks=$((${after%% *} - ${before%% *}))
        RES[$name.cpu_s]=$(awk -v t="$ticks" -v hz="$CLK_TCK" 'BEGIN { printf "%.2f", t / hz }')
        RES[$name.cpu_us_req]=$(awk -v t="$ticks" -v hz="$CLK_TCK" -v n="${RES[$name.requests]}" \
            'BEGIN { if (n > 0) printf "%.1f", t / hz * 1e6 / n; else print "n/a" }')
        kill -0 "$root" 2>/dev/null || die "$name died during the measurement"
    fi
    if [ -s "$WORK/$name.load.err" ]; then sed 's/^/  /' "$WORK/$name.load.err" >&2; fi
    log "$name: ${RES[$name.json]}"
}

start_proxy() {
    local kind=$1 dir="$WORK/$1" port
    local control
    free_port
    port=$FREE_PORT
    free_port
    control=$FREE_PORT
    # Rates raised so Pushpin's default 2,500/s cap plays no part in a plain proxying benchmark.
    write_config "$kind" "$dir" "$port" "$control" "$BACKEND_PORT" 1000000 1000000
    if [ "$kind" = pushpin ]; then
        (cd "$dir" && exec "$PUSHPIN_BIN" --config="$dir/pushpin.conf" --merge-output) \
            >"$dir/proxy.log" 2>&1 </dev/null &
    else
        (cd "$dir" && exec "$HOLDFAST_BIN" --config "$dir/pushpin.conf") \
            >"$dir/proxy.log" 2>&1 </dev/null &
    fi
    PROXY_PID=$!
    wait_ready "$port" "$PROXY_PID" "$kind" "$dir/proxy.log"
    PROXY_PORT=$port
}

# --- main ----------------------------------------------------------------------------------

CLK_TCK=$(getconf CLK_TCK)
if [ "$SKIP_HOLDFAST" = 0 ] && [ "$NO_BUILD" = 0 ]; then
    log "building holdfast (release)"
    (cd "$MAIN" && env -u CARGO_TARGET_DIR cargo build --release --quiet) || die "holdfast build failed"
fi
if [ "$SKIP_HOLDFAST" = 0 ] && [ ! -x "$HOLDFAST_BIN" ]; then
    die "no holdfast binary at $HOLDFAST_BIN (or use --skip-holdfast)"
fi
if [ "$SKIP_PUSHPIN" = 0 ] && ! command -v "$PUSHPIN_BIN" >/dev/null; then
    die "pushpin not found (apt-get install -y pushpin, or use --skip-pushpin)"
fi
log "building bench tools (release)"
CARGO_TARGET_DIR="$HERE/target" cargo build --release --quiet --manifest-path "$HERE/Cargo.toml" \
    || die "bench build failed"
LOAD="$HERE/target/release/bench-load"
BACKEND="$HERE/target/release/bench-backend"

free_port
BACKEND_PORT=$FREE_PORT
"$BACKEND" --port "$BACKEND_PORT" --threads "$BACKEND_THREADS" >"$WORK/backend.log" 2>&1 </dev/null &
BACKEND_PID=$!
wait_ready "$BACKEND_PORT" "$BACKEND_PID" bench-backend "$WORK/backend.log"

TARGETS=(direct)
measure direct "$BACKEND_PORT"

if [ "$SKIP_HOLDFAST" = 0 ]; then
    start_proxy holdfast
    measure holdfast "$PROXY_PORT" "$PROXY_PID"
    stop_tree "$PROXY_PID"
    PROXY_PID=""
    TARGETS+=(holdfast)
fi
if [ "$SKIP_PUSHPIN" = 0 ]; then
    start_proxy pushpin
    measure pushpin "$PROXY_PORT" "$PROXY_PID"
    stop_tree "$PROXY_PID"
    PROXY_PID=""
    TARGETS+=(pushpin)
fi

# --- report --------------------------------------------------------------------------------


# ratio A B FORMAT [SCALE]: A / B * SCALE, or n/a when either is missing.
ratio() {
    awk -v a="$1" -v b="$2" -v f="$3" -v k="${4:-1}" \
        'BEGIN { if (b > 0 && a != "" && a != "n/a") printf f, a / b * k; else print "n/a" }'
}

STAMP=$(date -u +%Y-%m-%dT%H:%M:%SZ)
REPORT="$WORK/report.md"
{
    echo "# HTTP proxy benchmark, $STAMP"
    echo
    echo "- machine: $(nproc) cores ($(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)), kernel $(uname -r)"
    echo "- holdfast commit: $(git_commit)"
    if [ "$SKIP_PUSHPIN" = 0 ]; then
        echo "- pushpin: $("$PUSHPIN_BIN" --version 2>/dev/null | head -n1 || echo unknown) (Debian, with condure + zurl)"
    fi
    echo "- load: bench-load, $CONNECTIONS keep-alive connections, 1 request in flight each, GET /x," \
        "${WARMUP}s warmup + ${DURATION}s measured, $LOAD_THREADS thread; origin: bench-backend, $BACKEND_THREADS thread;" \
        "all on 127.0.0.1, nothing pinned; proxies at log_level=$LOG_LEVEL"
    echo "- proxy CPU = utime+stime (+cutime+cstime) of the proxy's whole process tree over the measured window;" \
        "peak RSS = sum of VmHWM over that tree"
    echo
    echo "| target | req/s | p50 µs | p99 µs | max µs | errors | non-2xx | proxy CPU s | CPU µs/req | peak RSS MiB | procs |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    for t in "${TARGETS[@]}"; do
        cpu=${RES[$t.cpu_s]:-—} per=${RES[$t.cpu_us_req]:-—} procs=${RES[$t.procs]:-—} rss=—
        if [ -n "${RES[$t.peak_kb]:-}" ]; then rss=$(awk -v k="${RES[$t.peak_kb]}" 'BEGIN { printf "%.1f", k / 1024 }'); fi
        label=$t
        [ "$t" = direct ] && label="direct (no proxy)"
        printf '| %s | %.0f | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$label" "${RES[$t.rps]}" \
            "${RES[$t.p50_us]}" "${RES[$t.p99_us]}" "${RES[$t.max_us]}" "${RES[$t.errors]}" \
            "${RES[$t.non_2xx]}" "$cpu" "$per" "$rss" "$procs"
    done
    echo
    if [ "$SKIP_HOLDFAST" = 0 ]; then
        echo "- holdfast req/s as % of direct: $(ratio "${RES[holdfast.rps]}" "${RES[direct.rps]}" "%.2f%%" 100)"
    fi
    if [ "$SKIP_PUSHPIN" = 0 ]; then
        echo "- pushpin req/s as % of direct: $(ratio "${RES[pushpin.rps]}" "${RES[direct.rps]}" "%.2f%%" 100)"
    fi
    if [ "$SKIP_HOLDFAST" = 0 ] && [ "$SKIP_PUSHPIN" = 0 ]; then
        echo "- holdfast / pushpin req/s: $(ratio "${RES[holdfast.rps]}" "${RES[pushpin.rps]}" "%.2f")x"
        echo "- holdfast CPU per request / pushpin's: $(ratio "${RES[holdfast.cpu_us_req]}" "${RES[pushpin.cpu_us_req]}" "%.3f")"
    fi
    for t in "${TARGETS[@]}"; do
        if [ "${RES[$t.errors]:-0}" != 0 ] || [ "${RES[$t.non_2xx]:-0}" != 0 ]; then
            echo "- **warning: $t had ${RES[$t.errors]} errors and ${RES[$t.non_2xx]} non-2xx responses;" \
                "its figures do not measure proxying** (error kinds: $(tr '\n' ';' <"$WORK/$t.load.err"))"
        fi
    done
    echo
    echo "Raw bench-load output:"
    echo
    for t in "${TARGETS[@]}"; do echo "    $t: ${RES[$t.json]}"; done
} >"$REPORT"

mkdir -p "$HERE/results"
DEST="$HERE/results/http-proxy-$(date -u +%Y-%m-%d-%H%M%S).md"
cp "$REPORT" "$DEST.tmp" && mv "$DEST.tmp" "$DEST"
cat "$REPORT"
log "saved $DEST"
