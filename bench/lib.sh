# shellcheck shell=bash
# Shared by bench/run.sh and bench/run-grip.sh (sourced, not run): process-tree bookkeeping, free
# ports, readiness probes, the repository commit, and the proxy configuration both benchmarks use.
# The sourcing script defines log, die, READY_TIMEOUT_S and READY_PATH.

# Kernel start time of a pid, empty when it is gone or a zombie; guards every kill against pid reuse.
start_time() {
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 0
    stat=${stat##*) }
    # shellcheck disable=SC2086
    set -- $stat
    [ "$1" = Z ] && return 0
    printf '%s\n' "${20}"
}

# "<ticks> <pid>:<start> ..." for the process tree under a root (see run.sh).
tree_sample() {
    { cat /proc/[0-9]*/stat 2>/dev/null || true; } | awk -v root="$1" '
        {
            pid = $1; rest = $0
            sub(/^.*\) /, "", rest)
            split(rest, f, " ")
            ppid[pid] = f[2]; ticks[pid] = f[12] + f[13] + f[14] + f[15]; started[pid] = f[20]
        }
        END {
            if (!(root in ppid)) { print "0"; exit }
            member[root] = 1
            for (grew = 1; grew; ) {
                grew = 0
                for (p in ppid) if (!(p in member) && (ppid[p] in member)) { member[p] = 1; grew = 1 }
            }
            total = 0; list = ""
            for (p in member) { total += ticks[p]; list = list " " p ":" started[p] }
            print total list
        }'
}

# Stops a process started by this script and every descendant it had, each checked by start time.
stop_tree() {
    local root=$1 members member pid started i
    [ -n "$root" ] || return 0
    members=$(tree_sample "$root" | cut -s -d' ' -f2-)
    kill -TERM "$root" 2>/dev/null || true
    for ((i = 0; i < STOP_GRACE_S * 10; i++)); do
        kill -0 "$root" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$root" 2>/dev/null || true
    wait "$root" 2>/dev/null || true
    for ((i = 0; i < 30; i++)); do
        local alive=0
        for member in $members; do
            pid=${member%%:*} started=${member#*:}
            [ "$(start_time "$pid")" = "$started" ] && alive=1
        done
        [ $alive = 0 ] && break
        sleep 0.1
    done
    for member in $members; do
        pid=${member%%:*} started=${member#*:}
        if [ "$(start_time "$pid")" = "$started" ]; then kill -KILL "$pid" 2>/dev/null || true; fi
    done
}

CHOSEN_PORTS=" "
FREE_PORT=""
free_port() {
    local low=10000 high try p hex
    read -r high _ </proc/sys/net/ipv4/ip_local_port_range || high=32768
    [ "$high" -gt $((low + 1000)) ] || { low=20000; high=30000; }
    for ((try = 0; try < 500; try++)); do
        p=$((low + (RANDOM * 32768 + RANDOM) % (high - low)))
        case "$CHOSEN_PORTS" in *" $p "*) continue ;; esac
        hex=$(printf ':%04X ' "$p")
        if ! grep -qF "$hex" /proc/net/tcp /proc/net/tcp6 2>/dev/null; then
            CHOSEN_PORTS="$CHOSEN_PORTS$p "
            FREE_PORT=$p
            return 0
        fi
    done
    die "no free port found"
}

# Status code of GET <path> on 127.0.0.1:<port>, empty on failure.
http_status() {
    # shellcheck disable=SC2016  # the inner shell expands $1 and $2, not this one
    timeout 3 bash -c '
        exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
        printf "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%s\r\nConnection: close\r\n\r\n" "$2" "$1" >&3
        read -r _ code _ <&3 || exit 1
        printf "%s\n" "$code"' _ "$1" "$2" 2>/dev/null || true
}

# Waits until GET $READY_PATH (set by the calling script) through <port> answers 200 while <pid> lives.
wait_ready() {
    local port=$1 pid=$2 name=$3 log_file=$4 deadline=$((SECONDS + READY_TIMEOUT_S))
    while [ "$SECONDS" -lt "$deadline" ]; do
        if ! kill -0 "$pid" 2>/dev/null; then
            tail -n 40 "$log_file" >&2 || true
            die "$name exited during startup"
        fi
        [ "$(http_status "$port" "$READY_PATH")" = 200 ] && return 0
        sleep 0.1
    done
    tail -n 40 "$log_file" >&2 || true
    die "$name did not answer GET $READY_PATH with 200 within ${READY_TIMEOUT_S}s"
}

# Commit of the repository, read from .git (the report needs only the id, so git is not run).
# In a linked worktree (.git is a file) HEAD is in the worktree's own git directory and branches
# are in the common one it names in `commondir`.
git_commit() {
    local gitdir="$MAIN/.git" common head ref
    if [ -f "$gitdir" ]; then gitdir=$(sed -n 's/^gitdir: //p' "$gitdir"); fi
    common=$gitdir
    if [ -f "$gitdir/commondir" ]; then
        common=$(cat "$gitdir/commondir")
        case "$common" in /*) ;; *) common="$gitdir/$common" ;; esac
    fi
    head=$(cat "$gitdir/HEAD" 2>/dev/null) || { echo unknown; return; }
    case "$head" in
        "ref: "*)
            ref=${head#ref: }
            if [ -f "$gitdir/$ref" ]; then
                cut -c1-12 "$gitdir/$ref"
            elif [ -f "$common/$ref" ]; then
                cut -c1-12 "$common/$ref"
            elif grep -q " $ref\$" "$common/packed-refs" 2>/dev/null; then
                grep " $ref\$" "$common/packed-refs" | cut -c1-12
            else
                echo "none (no commit on ${ref#refs/heads/} yet)"
            fi
            ;;
        *) echo "${head:0:12}" ;;
    esac
}

# Writes pushpin.conf and routes into <dir>: proxy on <http_port>, control API on <control_port>,
# every request routed to the origin on <backend_port>, deliveries capped at <rate>/<hwm> (both
# left out when "unset"). With kind "pushpin" it adds what Debian's runner needs (as run.sh does).
write_config() {
    local kind=$1 dir=$2 http_port=$3 control=$4 backend_port=$5 rate=$6 hwm=$7
    local push sub command stats
    free_port; push=$FREE_PORT
    free_port; sub=$FREE_PORT
    free_port; command=$FREE_PORT
    free_port; stats=$FREE_PORT
    mkdir -p "$dir"
    printf '* 127.0.0.1:%s\n' "$backend_port" >"$dir/routes"
    {
        if [ "$kind" = pushpin ]; then
            mkdir -p "$dir/run" "$dir/log"
            printf '[global]\ninclude={libdir}/internal.conf\nrundir=%s\nipc_prefix=pushpin-\n' "$dir/run"
            printf 'port_offset=0\nstats_connection_ttl=120\n\n'
        fi
        printf '[runner]\nhttp_port=127.0.0.1:%s\nclient_buffer_size=8192\nclient_maxconn=50000\nlog_level=%s\n' "$http_port" "$LOG_LEVEL"
        if [ "$kind" = pushpin ]; then
            printf 'services=condure,zurl,pushpin-proxy,pushpin-handler\nlogdir=%s\n' "$dir/log"
            printf 'condure_bin=condure\nzurl_bin=zurl\nmongrel2_bin=mongrel2\nm2sh_bin=m2sh\n'
        fi
        printf '\n[proxy]\nroutesfile=routes\ndebug=false\nauto_cross_origin=false\n'
        printf 'sig_iss=pushpin\nsig_key=bench-secret\n'
        if [ "$kind" = pushpin ]; then
            printf 'zurl_out_specs=ipc://{rundir}/{ipc_prefix}zurl-in\n'
            printf 'zurl_out_stream_specs=ipc://{rundir}/{ipc_prefix}zurl-in-stream\n'
            printf 'zurl_in_specs=ipc://{rundir}/{ipc_prefix}zurl-out\nupdates_check=off\n'
        fi
        printf '\n[handler]\npush_in_spec=tcp://127.0.0.1:%s\npush_in_sub_specs=tcp://127.0.0.1:%s\n' "$push" "$sub"
        printf 'push_in_sub_connect=false\npush_in_http_addr=127.0.0.1\npush_in_http_port=%s\n' "$control"
        printf 'command_spec=tcp://127.0.0.1:%s\nstats_spec=tcp://127.0.0.1:%s\n' "$command" "$stats"
        if [ "$rate" != unset ]; then printf 'message_rate=%s\n' "$rate"; fi
        if [ "$hwm" != unset ]; then printf 'message_hwm=%s\n' "$hwm"; fi
        printf 'message_wait=5000\nid_cache_ttl=60\n'
        printf 'connection_subscription_max=20\nsubscription_linger=60\nstats_subscription_ttl=60\n'
        printf 'stats_report_interval=10\nstats_format=tnetstring\n'
    } >"$dir/pushpin.conf"
}
