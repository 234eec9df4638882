# bench/common.sh: helpers shared by bench/run.sh and bench/auth_run.sh (sourced, not run).
#
# Set before sourcing:
#   LOG_TAG  the log prefix ("bench", "auth-bench")
# Read when called: NGINX, NOFILE (set by the caller), BENCH_NICE, BENCH_KEEP_TMP (environment).
# shellcheck shell=bash

# shellcheck disable=SC2034  # used by the sourcing scripts
SMALL_BODY=$(printf 'gatehouse-bench-small-response-%069d' 0)   # exactly 100 bytes, no newline

log() { printf '[%s %s] %s\n' "$LOG_TAG" "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
is_uint() { [[ $1 =~ ^[0-9]+$ ]]; }

apply_nice() {  # BENCH_NICE, if set
  if [[ -n ${BENCH_NICE:-} ]]; then
    [[ $BENCH_NICE =~ ^-?[0-9]+$ ]] || die "BENCH_NICE must be an integer (e.g. -10)"
    renice -n "$BENCH_NICE" -p $$ >/dev/null || die "could not renice to $BENCH_NICE (negative values need root)"
  fi
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
  LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
  if awk -v l="${LOAD_START%% *}" -v n="$(nproc)" 'BEGIN{exit !(l > n / 2)}'; then
    log "warning: load average is $LOAD_START on $(nproc) CPUs${1:+ $1}: other work will skew the numbers"
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

start_nginx() {  # name prefix port -> sets <NAME>_MASTER and <NAME>_WORKER
  local name=$1 prefix=$2 port=$3 master worker i
  mkdir -p "$prefix/tmp"
  "$NGINX" -t -q -p "$prefix/" -e "$prefix/logs/error.log" -c "$prefix/nginx.conf" \
    || die "nginx config for $name is invalid (see above)"
  "$NGINX" -p "$prefix/" -e "$prefix/logs/error.log" -c "$prefix/nginx.conf" -g 'daemon off;' \
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
