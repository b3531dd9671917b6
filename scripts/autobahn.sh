#!/usr/bin/env bash
# Autobahn TestSuite cases (driven by PyPI `kosoku`) against holdfast in front of bench-ws-backend's echo, in
# both WebSocket modes: passthrough (a WebSocket backend) and WebSocket-over-HTTP. Exits non-zero if any case
# fails in either mode (NON-STRICT and INFORMATIONAL verdicts count as passes, as the suite itself scores them).
#
# usage: scripts/autobahn.sh [CASES...]      (default: 1.* through 7.*; e.g. '9.*' '10.*' for the rest)
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
cases=("$@")
[ ${#cases[@]} -gt 0 ] || cases=('1.*' '2.*' '3.*' '4.*' '5.*' '6.*' '7.*')
out="${AUTOBAHN_OUT:-$here/target/autobahn}"
work="$(mktemp -d)"
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

(cd "$here/bench" && cargo build --release --locked --bin bench-ws-backend >/dev/null 2>&1)
backend_port=$(free_port)
"$here/bench/target/release/bench-ws-backend" --port "$backend_port" 2>"$work/backend.log" &
pids+=($!)

run_mode() {
    local mode=$1 target=$2 port control
    port=$(free_port)
    control=$(free_port)
    printf '* %s\n' "$target" >"$work/routes.$mode"
    # Autobahn's group 9 sends messages up to 16 MiB; WebSocket-over-HTTP collects each message whole.
    cat >"$work/$mode.conf" <<CONF
[runner]
http_port=127.0.0.1:$port
log_level=1
[proxy]
routesfile=routes.$mode
[handler]
push_in_http_addr=127.0.0.1
push_in_http_port=$control
[holdfast]
websocket_max_message=16777216
CONF
    "$here/target/release/holdfast" --config "$work/$mode.conf" >"$work/$mode.log" 2>&1 &
    local pid=$!
    pids+=($pid)
    for _ in $(seq 1 100); do
        grep -q "listening on" "$work/$mode.log" 2>/dev/null && break
        sleep 0.05
    done
    local args=()
    for c in "${cases[@]}"; do args+=(-i "$c"); done
    echo "autobahn: $mode (${cases[*]})"
    local rc=0
    kosoku -m fuzzingclient "${args[@]}" -o "$out/$mode" "127.0.0.1:$port/echo" || rc=$?
    python3 - "$out/$mode/index.json" <<'PY'
import collections, json, sys
idx = json.load(open(sys.argv[1]))
groups = collections.defaultdict(collections.Counter)
for cases in idx.values():
    for case, r in cases.items():
        groups[case.split(".")[0]][r["behavior"]] += 1
for g in sorted(groups, key=int):
    print("  group %s: %s" % (g, ", ".join("%s %d" % kv for kv in sorted(groups[g].items()))))
PY
    kill "$pid" 2>/dev/null || true
    return $rc
}

status=0
run_mode passthrough "127.0.0.1:$backend_port" || status=1
run_mode over_http "127.0.0.1:$backend_port,over_http" || status=1
exit $status
