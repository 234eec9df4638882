# bench/common.sh: helpers shared by bench/run.sh and bench/auth_run.sh (sourced, not run).
#
# Set before sourcing:
#   LOG_TAG  the log prefix ("bench", "auth-bench")
# Read when called: NGINX, NOFILE (set by the caller), BENCH_NICE, BENCH_KEEP_TMP, BENCH_PROXY_CPU,
# BENCH_LOAD_CPU (environment).
# shellcheck shell=bash

# shellcheck disable=SC2034  # used by the sourcing scripts
SMALL_BODY=$(printf 'gatehouse-bench-small-response-%069d' 0)   # exactly 100 bytes, no newline

log() { printf '[%s %s] %s\n' "$LOG_TAG" "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
is_uint() { [[ $1 =~ ^[0-9]+$ ]]; }
check_int() {  # NAME min [max]: the variable NAME must hold an integer in min..max
  local v=${!1}
  if ! is_uint "$v" || ((v < $2)) || { [[ -n ${3:-} ]] && ((v > $3)); }; then
    die "$1 must be an integer in $2..${3:-}"
  fi
}

apply_nice() {  # BENCH_NICE, if set
  if [[ -n ${BENCH_NICE:-} ]]; then
    [[ $BENCH_NICE =~ ^-?[0-9]+$ ]] || die "BENCH_NICE must be an integer (e.g. -10)"
    renice -n "$BENCH_NICE" -p $$ >/dev/null || die "could not renice to $BENCH_NICE (negative values need root)"
  fi
}

# ---------------------------------------------------------------------------------------------
# CPU pinning: the proxy under test alone on PROXY_CPU; the script itself, and so everything it
# starts without ON_PROXY_CPU (origin, wrk, clients, strace), on LOAD_CPU. Without it the
# scheduler spreads wrk, the origin and the proxy over both cores, and the proxy's throughput
# says more about the load generator than about the proxy.
# ---------------------------------------------------------------------------------------------
cpus_allowed() {  # pid -> one allowed CPU per line
  awk '/^Cpus_allowed_list:/{print $2}' "/proc/$1/status" | tr ',' '\n' |
    awk -F- '{ hi = (NF > 1 ? $2 : $1); for (c = $1; c <= hi; c++) print c }'
}

# Sets PROXY_CPU, LOAD_CPU, ON_PROXY_CPU (a command prefix: `"${ON_PROXY_CPU[@]}" prog &` leaves the
# program's own pid in $!, as taskset exec's it; a shell function would leave a subshell's) and
# NPROC (CPUs usable before the pinning), then moves this script, and so its future children, to
# LOAD_CPU.
setup_pinning() {
  NPROC=$(nproc)
  PROXY_CPU=${BENCH_PROXY_CPU:-0}
  LOAD_CPU=${BENCH_LOAD_CPU:-1}
  if ! is_uint "$PROXY_CPU" || ! is_uint "$LOAD_CPU"; then die "BENCH_PROXY_CPU and BENCH_LOAD_CPU must be CPU numbers"; fi
  ((PROXY_CPU != LOAD_CPU)) || die "BENCH_PROXY_CPU and BENCH_LOAD_CPU must differ"
  local allowed
  allowed=$(cpus_allowed $$)
  if ! grep -qx "$PROXY_CPU" <<<"$allowed" || ! grep -qx "$LOAD_CPU" <<<"$allowed"; then
    die "CPUs $PROXY_CPU and $LOAD_CPU must both be available (this script may use: $(tr '\n' ' ' <<<"$allowed"))"
  fi
  command -v taskset >/dev/null 2>&1 || die "taskset is missing (on Debian: apt-get install util-linux)"
  taskset -pc "$LOAD_CPU" $$ >/dev/null || die "could not pin the script to CPU $LOAD_CPU"
  ON_PROXY_CPU=(taskset -c "$PROXY_CPU")
}


check_pinned() {  # label cpu pid...: every thread of every pid may run on <cpu> only
  local label=$1 cpu=$2 pid task allowed n=0
  shift 2
  for pid in "$@"; do
    for task in /proc/"$pid"/task/*; do
      allowed=$(cpus_allowed "$pid/task/${task##*/}" | tr '\n' ' ')
      [[ $allowed == "$cpu " ]] || die "$label: thread ${task##*/} of pid $pid may run on CPUs '$allowed', expected only $cpu"
      n=$((n + 1))
    done
  done
  printf '%s' "$n"
}

cpu_busy_total() {  # cpu -> "busy irq total" ticks since boot from /proc/stat
  # busy: all but idle and iowait; irq: hard + soft interrupts (on loopback, the receive side of
  # what a process sends is processed as softirq on the sender's CPU, outside its utime/stime)
  awk -v c="cpu$1" '$1 == c { t = 0; for (i = 2; i <= 9; i++) t += $i; print t - $5 - $6, $7 + $8, t }' /proc/stat
}

require_tools() {  # tool...
  local missing=() tool
  for tool in "$@"; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
  done
  if ((${#missing[@]})); then
    die "missing tools: ${missing[*]} (on Debian: apt-get install nginx-light wrk openssl curl python3 procps)"
  fi
}

port_busy() {
  local p=$1
  if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then return 0; fi
  if command -v ss >/dev/null 2>&1 && [[ -n $(ss -Hltn "( sport = :$p )" 2>/dev/null) ]]; then return 0; fi
  return 1
}
require_free_ports() {  # port...
  local p
  for p in "$@"; do
    if port_busy "$p"; then die "port 127.0.0.1:$p is busy; stop whatever listens there and retry"; fi
  done
}

# ---------------------------------------------------------------------------------------------
# Scratch directory, started processes, cleanup
# ---------------------------------------------------------------------------------------------
STARTED_PIDS=()    # processes the script started itself (nginx masters, gatehouse, clients)
WORKER_PIDS=()     # nginx workers: stopped by their master; SIGKILLed only if they outlive it
forget_pid() {     # drop a pid that has been waited for from STARTED_PIDS
  local keep=() p
  for p in "${STARTED_PIDS[@]}"; do [[ $p == "$1" ]] || keep+=("$p"); done
  STARTED_PIDS=("${keep[@]}")
}

cleanup() {
  local rc=$? pid i alive
  trap - EXIT INT TERM
  if ((rc == 130 || rc == 143)); then log "interrupted; stopping everything this script started"; fi
  for pid in "${STARTED_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for ((i = 0; i < 50; i++)); do   # up to 5 s for a graceful stop
    alive=0
    for pid in "${STARTED_PIDS[@]}" "${WORKER_PIDS[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    ((alive)) || break
    sleep 0.1
  done
  for pid in "${STARTED_PIDS[@]}" "${WORKER_PIDS[@]}"; do
    if kill -0 "$pid" 2>/dev/null; then
      log "warning: pid $pid did not stop within 5 s of SIGTERM; sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
    fi
  done
  for pid in "${STARTED_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [[ -n ${BENCH_KEEP_TMP:-} ]]; then
    log "scratch directory kept: $TMP"
  else
    rm -rf "$TMP"
  fi
  exit "$rc"
}

# Sets TMP and installs the traps: from here on, everything started is stopped on exit.
make_scratch() {  # name (mktemp prefix)
  TMP=$(mktemp -d "${TMPDIR:-/tmp}/$1.XXXXXX")
  chmod 755 "$TMP"   # nginx workers may run as another user (nobody) when started as root
  trap cleanup EXIT
  trap 'log "ERROR: line $LINENO: \"$BASH_COMMAND\" failed"' ERR
  trap 'exit 130' INT
  trap 'exit 143' TERM
}

note_load() {  # [words after "N CPUs"]: sets LOAD_START, warns on a busy machine
  local n=${NPROC:-$(nproc)}   # nproc counts only the CPUs this (pinned) script may use
  LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
  if awk -v l="${LOAD_START%% *}" -v n="$n" 'BEGIN{exit !(l > n / 2)}'; then
    log "warning: load average is $LOAD_START on $n CPUs${1:+ $1}: other work will skew the numbers"
  fi
}

# ---------------------------------------------------------------------------------------------
# nginx (origin and proxy), temp paths under their own prefix (never /var/lib/nginx)
# ---------------------------------------------------------------------------------------------
nginx_common() {  # $1 = prefix
  cat <<EOF
worker_processes 1;
worker_rlimit_nofile $NOFILE;
pid $1/nginx.pid;
error_log $1/logs/error.log warn;
events { worker_connections 8192; }
EOF
}
nginx_temp_paths() {  # $1 = prefix
  cat <<EOF
  client_body_temp_path $1/tmp/client_body;
  proxy_temp_path $1/tmp/proxy;
  fastcgi_temp_path $1/tmp/fastcgi;
  uwsgi_temp_path $1/tmp/uwsgi;
  scgi_temp_path $1/tmp/scgi;
EOF
}

wait_http() {  # url [seconds]: waits until the URL answers anything
  local url=$1 secs=${2:-10} i
  for ((i = 0; i < secs * 10; i++)); do
    curl -sk -o /dev/null --max-time 1 "$url" && return 0
    sleep 0.1
  done
  return 1
}

start_nginx() {  # name prefix port [proxy] -> sets <NAME>_MASTER and <NAME>_WORKER
  # With a 4th argument, master and worker run on PROXY_CPU (the worker inherits the affinity);
  # otherwise where the script runs (LOAD_CPU once setup_pinning was called).
  local name=$1 prefix=$2 port=$3 pin=() master worker i
  [[ -n ${4:-} ]] && pin=("${ON_PROXY_CPU[@]}")
  mkdir -p "$prefix/tmp"
  "$NGINX" -t -q -p "$prefix/" -e "$prefix/logs/error.log" -c "$prefix/nginx.conf" \
    || die "nginx config for $name is invalid (see above)"
  "${pin[@]}" "$NGINX" -p "$prefix/" -e "$prefix/logs/error.log" -c "$prefix/nginx.conf" -g 'daemon off;' \
    >"$prefix/logs/stdout.log" 2>&1 &
  master=$!
  STARTED_PIDS+=("$master")
  wait_http "http://127.0.0.1:$port/" 10 || { cat "$prefix/logs/error.log" >&2; die "$name did not start"; }
  worker=""
  for ((i = 0; i < 50; i++)); do
    worker=$(pgrep -P "$master" | head -n1 || true)
    [[ -n $worker ]] && break
    sleep 0.1
  done
  [[ -n $worker ]] || die "no worker process found for $name (master $master)"
  WORKER_PIDS+=("$worker")
  printf -v "${name}_MASTER" '%s' "$master"
  printf -v "${name}_WORKER" '%s' "$worker"
}

# ---------------------------------------------------------------------------------------------
# Measurement and wrk output
# ---------------------------------------------------------------------------------------------
cpu_ticks() {  # utime + stime of a whole process (all threads), in clock ticks
  local stat
  stat=$(<"/proc/$1/stat") || return 1
  [[ -n $stat ]] || return 1
  stat=${stat##*) }   # drop "pid (comm) ": the fields now start at field 3
  awk '{print $12 + $13}' <<<"$stat"
}
rss_kib() { awk '/^VmRSS:/{print $2}' "/proc/$1/status"; }

wrk_rps() { awk '/^Requests\/sec:/{print $2}' "$1"; }
wrk_errors() {  # "; Socket errors: ... Non-2xx ...", or nothing
  grep -E 'Socket errors|Non-2xx' "$1" | tr '\n' ' ' | sed 's/^ */; /;s/ *$//'
}

# ---------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------
env_used() {  # var...: "VAR='value' " for each one the caller exported
  local v val used=""
  for v in "$@"; do
    val=$(printenv "$v" || true)
    if [[ -n $val ]]; then used+="$v='$val' "; fi
  done
  printf '%s' "$used"
}

publish_report() {  # report_rc (0, or 3: errors recorded) destination: copies and shows $TMP/report.md
  local report_rc=$1
  ((report_rc == 0 || report_rc == 3)) || die "the report generator failed (status $report_rc)"
  mkdir -p "$(dirname "$2")"
  cp "$TMP/report.md" "$2"
  echo
  cat "$2"
  log "results written to $2"
  if ((report_rc == 3)); then
    log "ERRORS were recorded during the benchmark (see the errors column and the lines below the table)"
    exit 1
  fi
}
