#!/usr/bin/env bash
# bench/run.sh: what one core of gatehouse costs and delivers as a reverse proxy, next to nginx.
#
#   CPU 0 (BENCH_PROXY_CPU): the proxy under test, ALONE: gatehouse (all its threads) or the nginx
#                            proxy (master + its ONE worker); the other proxy is idle meanwhile
#   CPU 1 (BENCH_LOAD_CPU):  wrk, the origin (nginx, 1 worker, static files with sendfile) and
#                            this script with everything else it starts (clients, strace)
#
#   origin     127.0.0.1:18000  /small (100 B), /64k, /1m (static files)
#   gatehouse  http 127.0.0.1:18080   https 127.0.0.1:18443   (workers: 1)
#   nginx      http 127.0.0.1:18081   https 127.0.0.1:18444   (worker_processes 1, tuned for throughput)
#   haproxy    http 127.0.0.1:18082   (nbthread 1; idle-memory test only)
#   nginx x2   http 127.0.0.1:18083   https 127.0.0.1:18445   (BENCH_SELFCHECK=1 only: the nginx
#              proxy's configuration with every request proxied twice, hop on 127.0.0.1:18084)
#
# For each scenario the runs are interleaved (nginx, gatehouse, nginx, gatehouse, ...) with
# `wrk -t1 -c<N> -d<S>s --latency`; each figure is the MEDIAN over the repeats. The robust figure
# is CPU µs per request of the proxy process (utime + stime of all its threads from /proc). The
# report also gives how busy the proxy's core was, so a reader sees whether the proxy was the
# bottleneck. See bench/README.md.
#
# Environment:
#   BENCH_SECONDS      seconds per measured wrk run (default 5)
#   BENCH_REPEATS      measured runs per proxy and scenario (default 2)
#   BENCH_WARMUP       seconds of unrecorded warm-up per proxy and scenario (default 1, 0: none)
#   BENCH_SCENARIOS    subset of "small small-hdr 64k 1m tls-small" (default: all five); small-hdr:
#                      nginx also writes the forwarding fields and request id gatehouse writes;
#                      "none": no load run (e.g. the idle-memory test alone)
#   BENCH_IDLE_CONNS   idle keep-alive connections for the memory test (default 2000, 0: skip)
#   BENCH_IDLE_PROXIES subset of "gatehouse nginx haproxy" for the memory test (default: all three)
#   BENCH_IDLE_SETTLE  seconds between the last idle connection's answer and the RSS reading
#                      (default 5)
#   BENCH_STRACE       1: also count system calls per request under `strace -c` (fixed request count)
#   BENCH_SELFCHECK    1: also measure nginx against itself proxying every request twice (a known 2x)
#   BENCH_SELFCHECK_SCENARIOS  scenarios for the self-check (default "small 1m")
#   BENCH_QUIET_WAIT   seconds: before each measured run, wait up to this long for both cores to
#                      be quiet (other work under 10% over 1 s); default 0: do not wait
#   BENCH_RETRIES      measure a run again, up to this many times, when other work took 10% or more of
#                      either core during it (default 0)
#   BENCH_PROXY_CPU    CPU of the proxy under test (default 0)
#   BENCH_LOAD_CPU     CPU of wrk, the origin and everything else (default 1)
#   BENCH_RESULTS      where to write the Markdown report (default bench/results.md)
#   BENCH_KEEP_TMP     non-empty: keep the scratch directory (configs, logs, raw wrk/strace output)
#   BENCH_NICE         e.g. -10: renice this script, and so everything it starts, on a busy machine
#   GATEHOUSE_BIN      gatehouse program (default build-bench/examples/gatehouse/gatehouse, built
#                      with `meson setup build-bench -Dbuildtype=release -Db_ndebug=true` if missing)
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$SCRIPT_DIR/.." && pwd)
COMMAND_LINE="$0${*:+ $*}"
LOG_TAG=bench
# shellcheck source-path=SCRIPTDIR source=common.sh
source "$(dirname "$0")/common.sh"

BENCH_SECONDS=${BENCH_SECONDS:-5}
BENCH_REPEATS=${BENCH_REPEATS:-2}
BENCH_WARMUP=${BENCH_WARMUP:-1}
BENCH_IDLE_CONNS=${BENCH_IDLE_CONNS:-2000}
BENCH_IDLE_SETTLE=${BENCH_IDLE_SETTLE:-5}
BENCH_IDLE_PROXIES=${BENCH_IDLE_PROXIES:-gatehouse nginx haproxy}
BENCH_SCENARIOS=${BENCH_SCENARIOS:-small small-hdr 64k 1m tls-small}
BENCH_STRACE=${BENCH_STRACE:-0}
BENCH_SELFCHECK=${BENCH_SELFCHECK:-0}
BENCH_SELFCHECK_SCENARIOS=${BENCH_SELFCHECK_SCENARIOS:-small 1m}
BENCH_QUIET_WAIT=${BENCH_QUIET_WAIT:-0}
BENCH_RETRIES=${BENCH_RETRIES:-0}
BENCH_RESULTS=${BENCH_RESULTS:-$SCRIPT_DIR/results.md}
GATEHOUSE_BIN=${GATEHOUSE_BIN:-}

ORIGIN_PORT=18000
GH_HTTP_PORT=18080
GH_TLS_PORT=18443
NGX_HTTP_PORT=18081
NGX_TLS_PORT=18444
HA_PORT=18082
NGX2_HTTP_PORT=18083
NGX2_HOP_PORT=18084
NGX2_TLS_PORT=18445
ALL_PORTS=("$ORIGIN_PORT" "$GH_HTTP_PORT" "$GH_TLS_PORT" "$NGX_HTTP_PORT" "$NGX_TLS_PORT" "$HA_PORT"
  "$NGX2_HTTP_PORT" "$NGX2_HOP_PORT" "$NGX2_TLS_PORT")

# scenario -> "path scheme wrk_connections strace_requests". 1m: 16 connections keep the proxy
# busy while wrk (same core as the origin) still reads 1 MiB bodies fast enough. strace_requests:
# the fixed request count of the syscall mode (a few seconds each under strace on a quiet machine).
declare -A SCENARIO=(
  [small]="/small http 50 5000"
  [64k]="/64k http 50 2000"
  [1m]="/1m http 16 200"
  [tls-small]="/small https 50 5000"
  [small-hdr]="/hdr/small http 50 5000"
)
KNOWN_SCENARIOS="small 64k 1m tls-small small-hdr"

check_int BENCH_SECONDS 1 600
check_int BENCH_REPEATS 1 50
check_int BENCH_WARMUP 0 60
check_int BENCH_IDLE_CONNS 0 50000
check_int BENCH_IDLE_SETTLE 0 120
check_int BENCH_QUIET_WAIT 0 3600
check_int BENCH_RETRIES 0 20
[[ $BENCH_STRACE == 0 || $BENCH_STRACE == 1 ]] || die "BENCH_STRACE must be 0 or 1"
[[ $BENCH_SELFCHECK == 0 || $BENCH_SELFCHECK == 1 ]] || die "BENCH_SELFCHECK must be 0 or 1"
[[ $BENCH_SCENARIOS == none ]] && BENCH_SCENARIOS=""
for s in $BENCH_SCENARIOS; do
  [[ -n ${SCENARIO[$s]:-} ]] || die "unknown scenario '$s' in BENCH_SCENARIOS (known: $KNOWN_SCENARIOS)"
done
for s in $BENCH_SELFCHECK_SCENARIOS; do
  [[ -n ${SCENARIO[$s]:-} ]] || die "unknown scenario '$s' in BENCH_SELFCHECK_SCENARIOS (known: $KNOWN_SCENARIOS)"
done
for p in $BENCH_IDLE_PROXIES; do
  [[ $p == gatehouse || $p == nginx || $p == haproxy ]] || die "unknown proxy '$p' in BENCH_IDLE_PROXIES"
done
apply_nice

# ---------------------------------------------------------------------------------------------
# Tools, limits, ports
# ---------------------------------------------------------------------------------------------
tools=(nginx wrk openssl curl python3 pgrep getconf sha256sum timeout taskset)
((BENCH_IDLE_CONNS > 0)) && [[ " $BENCH_IDLE_PROXIES " == *" haproxy "* ]] && tools+=(haproxy)
((BENCH_STRACE)) && tools+=(strace)
require_tools "${tools[@]}"
NGINX=$(command -v nginx)
# The real interpreter (python3 may be a wrapper such as a pyenv shim): $! must be the client itself.
PYTHON=$(python3 -c 'import sys; print(sys.executable)')
CLK_TCK=$(getconf CLK_TCK)

# Enough descriptors for the idle-connection test (the proxies inherit this limit).
if ! ulimit -n 65536 2>/dev/null; then
  hard=$(ulimit -Hn)
  [[ $hard == unlimited ]] && hard=1048576
  ulimit -n "$hard"
  log "warning: could not raise the descriptor limit to 65536; using the hard limit $hard"
fi
NOFILE=$(ulimit -n)
# haproxy uses two descriptors per connection (see HA_MAXCONN)
((NOFILE >= 2 * BENCH_IDLE_CONNS + 1024)) || die "descriptor limit $NOFILE is too low for $BENCH_IDLE_CONNS idle connections"

require_free_ports "${ALL_PORTS[@]}"

# ---------------------------------------------------------------------------------------------
# gatehouse binary (build it if missing; before the pinning, so the build may use every core)
# ---------------------------------------------------------------------------------------------
if [[ -z $GATEHOUSE_BIN ]]; then
  GATEHOUSE_BIN=$REPO_ROOT/build-bench/examples/gatehouse/gatehouse
  if [[ ! -x $GATEHOUSE_BIN ]]; then
    log "building gatehouse in $REPO_ROOT/build-bench (release, NDEBUG)"
    if [[ ! -f $REPO_ROOT/build-bench/build.ninja ]]; then
      (cd "$REPO_ROOT" && meson setup build-bench -Dbuildtype=release -Db_ndebug=true -Dtests=false) >&2
    fi
    ninja -C "$REPO_ROOT/build-bench" examples/gatehouse/gatehouse >&2
  fi
fi
[[ -x $GATEHOUSE_BIN ]] || die "gatehouse program not found or not executable: $GATEHOUSE_BIN"

# From here on this script and everything it starts run on LOAD_CPU, except the proxies.
setup_pinning

# ---------------------------------------------------------------------------------------------
# Scratch directory and cleanup
# ---------------------------------------------------------------------------------------------
make_scratch gatehouse-bench

# ---------------------------------------------------------------------------------------------
# Content, certificate, configurations
# ---------------------------------------------------------------------------------------------
mkdir -p "$TMP/origin/html" "$TMP/origin/logs" "$TMP/nginx/logs" "$TMP/nginx2/logs" "$TMP/haproxy" \
  "$TMP/tls" "$TMP/out"
head -c 65536 /dev/urandom >"$TMP/origin/html/64k"
head -c 1048576 /dev/urandom >"$TMP/origin/html/1m"
chmod 644 "$TMP/origin/html/"*
printf '%s' "$SMALL_BODY" >"$TMP/small.expected"

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
  -subj "/CN=localhost" -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
  -keyout "$TMP/tls/server.key" -out "$TMP/tls/server.crt" 2>"$TMP/tls/openssl.log" ||
  { cat "$TMP/tls/openssl.log" >&2; die "openssl could not generate the test certificate"; }

O=$TMP/origin
{
  nginx_common "$O"
  cat <<EOF
http {
$(nginx_temp_paths "$O")
  access_log off;
  default_type application/octet-stream;
  sendfile on;
  tcp_nopush on;
  keepalive_timeout 75s;
  keepalive_requests 1000000;
  server {
    listen 127.0.0.1:$ORIGIN_PORT;
    root $O/html;
    location = /small { default_type text/plain; return 200 "$SMALL_BODY"; }
    location = /hdr/small { default_type text/plain; return 200 "$SMALL_BODY"; }
    location / { }
  }
}
EOF
} >"$O/nginx.conf"

# The nginx proxy as a user tuning it for throughput would set it up. With a hop port, every
# request is proxied twice by the same worker (front server -> hop server -> origin): the
# self-check's known 2x.
nginx_proxy_conf() {  # prefix http_port tls_port [hop_port]
  local prefix=$1 http_port=$2 tls_port=$3 hop_port=${4:-} front=origin
  [[ -n $hop_port ]] && front=hop
  local loc="proxy_pass http://$front; proxy_http_version 1.1; proxy_set_header Connection \"\";"
  nginx_common "$prefix"
  cat <<EOF
http {
$(nginx_temp_paths "$prefix")
  access_log off;
  sendfile on;                    # only used for responses from disk; none here (see below)
  tcp_nodelay on;
  keepalive_timeout 75s;          # longer than the idle-connection measurement
  keepalive_requests 1000000;     # 1.22's default (1000) would make wrk reconnect every 1000 requests
  proxy_buffering on;
  proxy_buffer_size 16k;          # response header + first part of the body
  proxy_buffers 16 16k;           # 256 KiB in memory per request (default 8 x 4k/8k)
  proxy_busy_buffers_size 32k;
  proxy_max_temp_file_size 0;     # never spool large answers to disk: wait for the client instead
  upstream origin {
    server 127.0.0.1:$ORIGIN_PORT;
    keepalive 256;                # idle upstream connections kept per worker (> wrk connections)
    keepalive_requests 1000000;
    keepalive_timeout 75s;
  }
EOF
  if [[ -n $hop_port ]]; then
    cat <<EOF
  upstream hop {
    server 127.0.0.1:$hop_port;
    keepalive 256;
    keepalive_requests 1000000;
    keepalive_timeout 75s;
  }
  server { listen 127.0.0.1:$hop_port; location / { proxy_pass http://origin; proxy_http_version 1.1; proxy_set_header Connection ""; } }
EOF
  fi
  # /hdr/: what gatehouse does to every request by default, done by nginx too (the small-hdr
  # scenario): X-Forwarded-For, X-Real-IP, X-Forwarded-Proto, X-Forwarded-Host, Forwarded, and a
  # request id sent upstream and returned to the client. (gatehouse also writes a W3C
  # traceparent, which nginx cannot without a module: gatehouse still does more.)
  local hdr="$loc proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;"
  hdr+=" proxy_set_header X-Real-IP \$remote_addr; proxy_set_header X-Forwarded-Proto \$scheme;"
  hdr+=" proxy_set_header X-Forwarded-Host \$host;"
  hdr+=" proxy_set_header Forwarded \"for=\$remote_addr;host=\\\"\$host\\\";proto=\$scheme\";"
  hdr+=" proxy_set_header X-Request-Id \$request_id; add_header X-Request-Id \$request_id;"
  cat <<EOF
  server {
    listen 127.0.0.1:$http_port;
    location / { $loc }
    location /hdr/ { $hdr }
  }
  server {
    listen 127.0.0.1:$tls_port ssl;
    ssl_certificate $TMP/tls/server.crt;
    ssl_certificate_key $TMP/tls/server.key;
    ssl_protocols TLSv1.2 TLSv1.3;   # 1.22's default stops at TLSv1.2; gatehouse offers 1.3
    location / { $loc }
  }
}
EOF
}
N=$TMP/nginx
nginx_proxy_conf "$N" "$NGX_HTTP_PORT" "$NGX_TLS_PORT" >"$N/nginx.conf"
N2=$TMP/nginx2
nginx_proxy_conf "$N2" "$NGX2_HTTP_PORT" "$NGX2_TLS_PORT" "$NGX2_HOP_PORT" >"$N2/nginx.conf"

# haproxy (idle-memory test only): one process, one thread, http mode, keep-alive on both sides.
# maxconn within the descriptor limit (haproxy needs two per connection and refuses to start otherwise).
HA_MAXCONN=$(((NOFILE - 200) / 2))
((HA_MAXCONN > 20000)) && HA_MAXCONN=20000
cat >"$TMP/haproxy/haproxy.cfg" <<EOF
global
  nbthread 1
  maxconn $HA_MAXCONN
defaults
  mode http
  option http-keep-alive
  http-reuse safe
  timeout connect 5s
  timeout client 75s
  timeout server 30s
  timeout http-keep-alive 75s
frontend fe
  bind 127.0.0.1:$HA_PORT
  maxconn $HA_MAXCONN
  default_backend origin
backend origin
  server origin 127.0.0.1:$ORIGIN_PORT
EOF

cat >"$TMP/gatehouse.json" <<EOF
{
  "workers": 1,
  "drain_timeout_ms": 2000,
  "limits": { "max_body_bytes": 0 },
  "listeners": [
    { "address": "127.0.0.1", "port": $GH_HTTP_PORT },
    { "address": "127.0.0.1", "port": $GH_TLS_PORT,
      "tls": { "certificates": [ { "cert": "$TMP/tls/server.crt", "key": "$TMP/tls/server.key" } ] } }
  ],
  "upstreams": { "origin": { "endpoints": ["127.0.0.1:$ORIGIN_PORT"], "max_idle_per_worker": 256 } },
  "routes": [ { "name": "all", "path": "/", "upstream": "origin" } ]
}
EOF

# ---------------------------------------------------------------------------------------------
# Start origin and proxies
# ---------------------------------------------------------------------------------------------
log "scratch directory: $TMP"
note_load "before the benchmark"
start_nginx ORIGIN "$O" "$ORIGIN_PORT"
start_nginx NGX "$N" "$NGX_HTTP_PORT" proxy
# shellcheck disable=SC2153  # NGX_WORKER and friends are set by start_nginx (printf -v)
log "origin nginx: master $ORIGIN_MASTER worker $ORIGIN_WORKER; proxy nginx: master $NGX_MASTER worker $NGX_WORKER"
NGX2_WORKER=""
if ((BENCH_SELFCHECK)); then
  start_nginx NGX2 "$N2" "$NGX2_HTTP_PORT" proxy
  log "self-check nginx x2: master $NGX2_MASTER worker $NGX2_WORKER"
fi

"$GATEHOUSE_BIN" --check "$TMP/gatehouse.json" >"$TMP/gatehouse-check.log" 2>&1 ||
  { cat "$TMP/gatehouse-check.log" >&2; die "gatehouse rejected the benchmark configuration"; }
"${ON_PROXY_CPU[@]}" "$GATEHOUSE_BIN" --config "$TMP/gatehouse.json" >"$TMP/gatehouse.log" 2>&1 &
GH_PID=$!
STARTED_PIDS+=("$GH_PID")
wait_http "http://127.0.0.1:$GH_HTTP_PORT/" 10 || { cat "$TMP/gatehouse.log" >&2; die "gatehouse did not start"; }

# Pinning is checked on every thread, not assumed.
GH_THREADS=$(check_pinned gatehouse "$PROXY_CPU" "$GH_PID")
NGX_THREADS=$(check_pinned "nginx proxy" "$PROXY_CPU" "$NGX_MASTER" "$NGX_WORKER")
ORIGIN_THREADS=$(check_pinned origin "$LOAD_CPU" "$ORIGIN_MASTER" "$ORIGIN_WORKER")
check_pinned "this script" "$LOAD_CPU" $$ >/dev/null
PIN_NOTE="gatehouse pid $GH_PID ($GH_THREADS threads) and nginx proxy master $NGX_MASTER + worker $NGX_WORKER ($NGX_THREADS threads) on CPU $PROXY_CPU only; origin nginx ($ORIGIN_THREADS threads), wrk, clients and strace on CPU $LOAD_CPU only"
if ((BENCH_SELFCHECK)); then
  n=$(check_pinned "nginx x2" "$PROXY_CPU" "$NGX2_MASTER" "$NGX2_WORKER")
  PIN_NOTE+="; self-check nginx x2 ($n threads) on CPU $PROXY_CPU"
fi
log "pinning: $PIN_NOTE"

# ---------------------------------------------------------------------------------------------
# Correctness: every proxy answers 200 with the origin's exact bytes, on every URL measured
# ---------------------------------------------------------------------------------------------
sha_of() { sha256sum "$1" | cut -d' ' -f1; }
declare -A EXPECTED_SHA=(
  [/small]=$(sha_of "$TMP/small.expected")
  [/64k]=$(sha_of "$O/html/64k")
  [/1m]=$(sha_of "$O/html/1m")
)
check_url() {  # label url path
  local label=$1 url=$2 path=$3 code sha
  code=$(curl -sk --max-time 10 -o "$TMP/out/check.body" -w '%{http_code}' "$url" || true)
  [[ $code == 200 ]] || die "$label: $url answered HTTP '${code:-none}', expected 200 (before any measurement)"
  sha=$(sha_of "$TMP/out/check.body")
  [[ $sha == "${EXPECTED_SHA[$path]}" ]] ||
    die "$label: $url returned a body that differs from the origin's ($(stat -c %s "$TMP/out/check.body") bytes)"
}
for path in /small /64k /1m; do
  check_url origin "http://127.0.0.1:$ORIGIN_PORT$path" "$path"
  check_url nginx "http://127.0.0.1:$NGX_HTTP_PORT$path" "$path"
  check_url nginx "https://127.0.0.1:$NGX_TLS_PORT$path" "$path"
  check_url gatehouse "http://127.0.0.1:$GH_HTTP_PORT$path" "$path"
  check_url gatehouse "https://127.0.0.1:$GH_TLS_PORT$path" "$path"
  if ((BENCH_SELFCHECK)); then
    check_url "nginx x2" "http://127.0.0.1:$NGX2_HTTP_PORT$path" "$path"
    check_url "nginx x2" "https://127.0.0.1:$NGX2_TLS_PORT$path" "$path"
  fi
done
log "the proxies answer 200 with the origin's bytes on /small, /64k, /1m over http and https"

tls_params() {  # port -> "TLSv1.3 TLS_AES_256_GCM_SHA384"
  timeout 5 openssl s_client -connect "127.0.0.1:$1" -brief </dev/null 2>&1 |
    awk -F': ' '/^Protocol version/{p=$2} /^Ciphersuite/{c=$2} END{print p " " c}' || true
}
NGX_TLS_PARAMS=$(tls_params "$NGX_TLS_PORT")
GH_TLS_PARAMS=$(tls_params "$GH_TLS_PORT")

# ---------------------------------------------------------------------------------------------
# Measurement helpers
# ---------------------------------------------------------------------------------------------
HA_PID=""
proxy_pid() {
  case $1 in
    nginx) echo "$NGX_WORKER" ;; gatehouse) echo "$GH_PID" ;; nginx-x2) echo "$NGX2_WORKER" ;; haproxy) echo "$HA_PID" ;;
  esac
}
proxy_port() {  # proxy scheme
  case $1/$2 in
    nginx/http) echo "$NGX_HTTP_PORT" ;; nginx/https) echo "$NGX_TLS_PORT" ;;
    gatehouse/http) echo "$GH_HTTP_PORT" ;; gatehouse/https) echo "$GH_TLS_PORT" ;;
    nginx-x2/http) echo "$NGX2_HTTP_PORT" ;; nginx-x2/https) echo "$NGX2_TLS_PORT" ;;
    haproxy/http) echo "$HA_PORT" ;;
  esac
}
proxy_log() {
  case $1 in
    gatehouse) echo "$TMP/gatehouse.log" ;; nginx) echo "$N/logs/error.log" ;;
    nginx-x2) echo "$N2/logs/error.log" ;; haproxy) echo "$TMP/haproxy/haproxy.log" ;;
  esac
}

declare -A DEAD=()   # proxy -> reason, once it has died
check_alive() {      # proxy
  local pid st
  pid=$(proxy_pid "$1")
  if [[ -z ${DEAD[$1]:-} ]] && ! kill -0 "$pid" 2>/dev/null; then
    DEAD[$1]="process $pid exited"
    log "ERROR: $1 (pid $pid) is no longer running"
    if [[ $1 == gatehouse ]]; then
      wait "$GH_PID" 2>/dev/null && st=0 || st=$?
      DEAD[$1]="process exited with status $st"
    fi
    tail -n 20 "$(proxy_log "$1")" >&2 || true
  fi
  [[ -z ${DEAD[$1]:-} ]]
}

RUNS_TSV=$TMP/runs.tsv
printf 'group\tscenario\tconns\tproxy\trun\twrk_file\twrk_rc\tticks_before\tticks_after\talive\twall_ns\tproxy_cpu_before\tproxy_cpu_after\tload_cpu_before\tload_cpu_after\tload_ticks\tretries\n' >"$RUNS_TSV"
SCEN_TSV=$TMP/scenarios.tsv   # group scenario load-average-at-start
: >"$SCEN_TSV"

# On a machine shared with other work (builds in other sessions: nice does not rank them against
# this script under autogroup scheduling), optionally wait for a quiet moment before each run.
QUIET_WAITED=0   # seconds waited in all
QUIET_MISSED=0   # runs started without a quiet moment
RETRIED=0        # runs done again because other work disturbed them
wait_quiet() {
  ((BENCH_QUIET_WAIT > 0)) || return 0
  local t0 p0 l0 p1 l1 start=$SECONDS
  while :; do
    p0=$(cpu_busy_total "$PROXY_CPU")
    l0=$(cpu_busy_total "$LOAD_CPU")
    sleep 1
    p1=$(cpu_busy_total "$PROXY_CPU")
    l1=$(cpu_busy_total "$LOAD_CPU")
    # busy share of each core over that second, in percent (the idle proxies count, but are idle)
    if awk -v a="$p0" -v b="$p1" -v c="$l0" -v d="$l1" 'BEGIN {
         split(a, x); split(b, y); split(c, u); split(d, v)
         exit !((y[1] - x[1]) * 100 < 10 * (y[3] - x[3]) && (v[1] - u[1]) * 100 < 10 * (v[3] - u[3])) }'; then
      break
    fi
    if ((SECONDS - start >= BENCH_QUIET_WAIT)); then
      QUIET_MISSED=$((QUIET_MISSED + 1))
      log "warning: no quiet moment within ${BENCH_QUIET_WAIT} s (load $(cut -d' ' -f1 /proc/loadavg)); measuring anyway"
      break
    fi
  done
  t0=$((SECONDS - start))
  QUIET_WAITED=$((QUIET_WAITED + t0))
  ((t0 < 5)) || log "waited $t0 s for a quiet machine"
}

times_ticks() {  # file written by `times` -> CPU time of the shell's waited-for children, in clock ticks
  awk -v hz="$CLK_TCK" 'NR == 2 { t = 0; for (i = 1; i <= 2; i++) { split($i, a, /[ms]/); t += a[1] * 60 + a[2] }
    printf "%d\n", t * hz + 0.5 }' "$1"
}

# Share (in %) of each core that was busy with neither what we run there nor interrupts, between
# two "busy irq total" snapshots: "<CPU 0 other> <CPU 1 other>".
other_work_pct() {  # proxy_before proxy_after proxy_ticks load_before load_after load_ticks
  awk -v p0="$1" -v p1="$2" -v pt="$3" -v l0="$4" -v l1="$5" -v lt="$6" 'BEGIN {
    split(p0, a); split(p1, b); split(l0, c); split(l1, d)
    o0 = b[3] > a[3] ? (b[1] - a[1] - (b[2] - a[2]) - pt) * 100 / (b[3] - a[3]) : 0
    o1 = d[3] > c[3] ? (d[1] - c[1] - (d[2] - c[2]) - lt) * 100 / (d[3] - c[3]) : 0
    printf "%d %d\n", o0 < 0 ? 0 : o0, o1 < 0 ? 0 : o1 }'
}

run_wrk() {  # group scenario proxy run_index (0 = warm-up, not recorded)
  local group=$1 scen=$2 proxy=$3 idx=$4 path scheme conns url pid secs out t0 t1 w0 w1 rc alive pc0 pc1 lc0 lc1
  local o0 o1 wt ot try other
  read -r path scheme conns _ <<<"${SCENARIO[$scen]}"
  url="$scheme://127.0.0.1:$(proxy_port "$proxy" "$scheme")$path"
  pid=$(proxy_pid "$proxy")
  secs=$BENCH_SECONDS
  ((idx == 0)) && secs=$BENCH_WARMUP
  out="$TMP/out/wrk-$group-$scen-$proxy-$idx.txt"
  for ((try = 0; ; try++)); do
    check_alive "$proxy" || return 0
    ((idx == 0)) || wait_quiet
    pc0=$(cpu_busy_total "$PROXY_CPU")
    lc0=$(cpu_busy_total "$LOAD_CPU")
    o0=$(cpu_ticks "$ORIGIN_WORKER")
    times >"$TMP/times.before"   # in this shell, not a subshell: its children's CPU time so far
    t0=$(cpu_ticks "$pid")
    w0=$(date +%s%N)
    # One wrk thread: wrk has one core (shared with the origin); more threads would only contend.
    timeout $((secs + 30)) wrk -t1 -c"$conns" -d"${secs}s" --latency "$url" >"$out" 2>&1 && rc=0 || rc=$?
    w1=$(date +%s%N)
    alive=1
    t1=$(cpu_ticks "$pid" 2>/dev/null) || t1=$t0
    times >"$TMP/times.after"
    o1=$(cpu_ticks "$ORIGIN_WORKER")
    pc1=$(cpu_busy_total "$PROXY_CPU")
    lc1=$(cpu_busy_total "$LOAD_CPU")
    check_alive "$proxy" || alive=0
    ((idx > 0)) || break
    wt=$(($(times_ticks "$TMP/times.after") - $(times_ticks "$TMP/times.before")))   # wrk (and timeout)
    ot=$((o1 - o0))
    other=$(other_work_pct "$pc0" "$pc1" $((t1 - t0)) "$lc0" "$lc1" $((wt + ot)))
    # A run during which other work took 10% or more of either core is done again (BENCH_RETRIES).
    if ((alive)) && ((${other% *} >= 10 || ${other#* } >= 10)) && ((try < BENCH_RETRIES)); then
      log "$(printf '%-9s %-9s run %d: other work took %d%% of CPU %d and %d%% of CPU %d; measuring again' \
        "$scen" "$proxy" "$idx" "${other% *}" "$PROXY_CPU" "${other#* }" "$LOAD_CPU")"
      mv "$out" "${out%.txt}-disturbed-$try.txt"
      RETRIED=$((RETRIED + 1))
      continue
    fi
    break
  done
  if ((idx > 0)); then
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$group" "$scen" "$conns" "$proxy" \
      "$idx" "$out" "$rc" "$t0" "$t1" "$alive" $((w1 - w0)) "$pc0" "$pc1" "$lc0" "$lc1" $((wt + ot)) "$try" >>"$RUNS_TSV"
    log "$(printf '%-9s %-9s run %d: %s req/s, %d CPU ticks in %d ms, other work %d%% / %d%% of CPU %d / %d%s' \
      "$scen" "$proxy" "$idx" "$(wrk_rps "$out")" $((t1 - t0)) $(((w1 - w0) / 1000000)) "${other% *}" "${other#* }" \
      "$PROXY_CPU" "$LOAD_CPU" "$(wrk_errors "$out")")"
  fi
  if ((rc != 0)); then log "warning: wrk exited with status $rc for $url"; fi
}

run_scenarios() {  # group "proxyA proxyB" scenario...: interleaved runs, A first
  local group=$1 proxies=$2 scen p r
  shift 2
  for scen in "$@"; do
    printf '%s\t%s\t%s\n' "$group" "$scen" "$(cut -d' ' -f1 /proc/loadavg)" >>"$SCEN_TSV"
    if ((BENCH_WARMUP > 0)); then
      for p in $proxies; do run_wrk "$group" "$scen" "$p" 0; done
    fi
    for ((r = 1; r <= BENCH_REPEATS; r++)); do
      for p in $proxies; do run_wrk "$group" "$scen" "$p" "$r"; done
    done
  done
}

# ---------------------------------------------------------------------------------------------
# Memory per idle keep-alive connection (before the load runs, on freshly started proxies)
# ---------------------------------------------------------------------------------------------
declare -A IDLE=()   # proxy -> "before_kib after_kib opened failed established closed_by_server"
idle_test() {  # proxy
  local proxy=$1 pid port before after cpid line opened failed established i closed
  pid=$(proxy_pid "$proxy")
  port=$(proxy_port "$proxy" http)
  check_alive "$proxy" || return 0
  before=$(rss_kib "$pid")
  "$PYTHON" "$SCRIPT_DIR/idle_clients.py" --port "$port" --count "$BENCH_IDLE_CONNS" --hold 50 \
    >"$TMP/out/idle-$proxy.out" 2>"$TMP/out/idle-$proxy.err" &
  cpid=$!
  STARTED_PIDS+=("$cpid")
  line=""
  for ((i = 0; i < 600; i++)); do   # up to 60 s to open them all
    line=$(grep -m1 '^READY ' "$TMP/out/idle-$proxy.out" || true)
    [[ -n $line ]] && break
    kill -0 "$cpid" 2>/dev/null || break
    sleep 0.1
  done
  [[ -n $line ]] || { cat "$TMP/out/idle-$proxy.err" >&2; die "idle_clients.py did not get ready against $proxy"; }
  read -r _ opened failed <<<"$line"
  # Let the proxies settle: the last connections opened are not idle yet. gatehouse keeps a
  # connection's read buffer for 1-1.5 s after a request (the next one usually follows), then
  # gives it back; nginx frees its buffers at once.
  sleep "$BENCH_IDLE_SETTLE"
  check_alive "$proxy" || return 0
  after=$(rss_kib "$pid")
  established=-1
  if command -v ss >/dev/null 2>&1; then
    established=$(ss -Htn state established "( sport = :$port )" | wc -l)
  fi
  kill -TERM "$cpid" 2>/dev/null || true
  wait "$cpid" 2>/dev/null || true
  forget_pid "$cpid"
  closed=$(awk '/^CLOSED /{print $3}' "$TMP/out/idle-$proxy.out")
  IDLE[$proxy]="$before $after $opened $failed $established ${closed:--1}"
  log "idle $proxy: RSS $before -> $after KiB with $opened idle connections ($failed failed, $established established at the proxy, ${closed:-?} closed by it before the end)"
  if [[ -s $TMP/out/idle-$proxy.err ]]; then sed 's/^/    /' "$TMP/out/idle-$proxy.err" >&2; fi
  sleep 1
}

HA_VERSION=""
if ((BENCH_IDLE_CONNS > 0)); then
  for proxy in $BENCH_IDLE_PROXIES; do
    if [[ $proxy == haproxy ]]; then
      # Started for this test only, on the proxy CPU like the others, and stopped right after it.
      HA_VERSION=$(haproxy -v 2>&1 | sed -n '1{s/ - https.*//;p}')   # sed reads it all: no SIGPIPE
      haproxy -c -q -f "$TMP/haproxy/haproxy.cfg" >"$TMP/haproxy/check.log" 2>&1 ||
        { cat "$TMP/haproxy/check.log" >&2; die "haproxy rejected the benchmark configuration"; }
      "${ON_PROXY_CPU[@]}" haproxy -db -f "$TMP/haproxy/haproxy.cfg" >"$TMP/haproxy/haproxy.log" 2>&1 &
      HA_PID=$!
      STARTED_PIDS+=("$HA_PID")
      wait_http "http://127.0.0.1:$HA_PORT/small" 10 || { cat "$TMP/haproxy/haproxy.log" >&2; die "haproxy did not start"; }
      check_url haproxy "http://127.0.0.1:$HA_PORT/small" /small
      n=$(check_pinned haproxy "$PROXY_CPU" "$HA_PID")
      log "haproxy: pid $HA_PID ($n threads) on CPU $PROXY_CPU"
      idle_test haproxy
      kill -TERM "$HA_PID" 2>/dev/null || true
      wait "$HA_PID" 2>/dev/null || true
      forget_pid "$HA_PID"
    else
      idle_test "$proxy"
    fi
  done
fi

# ---------------------------------------------------------------------------------------------
# Load runs, interleaved; then the optional self-check and syscall counts
# ---------------------------------------------------------------------------------------------
# shellcheck disable=SC2086  # word splitting of the scenario lists is intended
run_scenarios main "nginx gatehouse" $BENCH_SCENARIOS

if ((BENCH_SELFCHECK)); then
  log "self-check: nginx against itself proxying every request twice (scenarios: $BENCH_SELFCHECK_SCENARIOS)"
  # shellcheck disable=SC2086
  run_scenarios selfcheck "nginx nginx-x2" $BENCH_SELFCHECK_SCENARIOS
fi

STRACE_TSV=$TMP/strace.tsv   # scenario proxy strace_file ok failed skipped bytes seconds
: >"$STRACE_TSV"
strace_run() {  # scenario proxy
  local scen=$1 proxy=$2 path scheme conns nreq port pid cpid spid line i sout serr ok failed skipped bytes secs tls=()
  read -r path scheme conns nreq <<<"${SCENARIO[$scen]}"
  [[ $scheme == https ]] && tls=(--tls)
  port=$(proxy_port "$proxy" "$scheme")
  pid=$(proxy_pid "$proxy")
  check_alive "$proxy" || return 0
  sout=$TMP/out/strace-$scen-$proxy.txt
  serr=$TMP/out/strace-$scen-$proxy.err
  "$PYTHON" "$SCRIPT_DIR/count_clients.py" --port "$port" --path "$path" --conns "$conns" --requests "$nreq" \
    "${tls[@]}" --hold 60 --deadline 120 >"$TMP/out/count-$scen-$proxy.out" 2>"$TMP/out/count-$scen-$proxy.err" &
  cpid=$!
  STARTED_PIDS+=("$cpid")
  for ((i = 0; i < 300; i++)); do   # connections and warm-up requests: up to 30 s
    grep -q '^READY ' "$TMP/out/count-$scen-$proxy.out" && break
    kill -0 "$cpid" 2>/dev/null || break
    sleep 0.1
  done
  grep -q '^READY ' "$TMP/out/count-$scen-$proxy.out" ||
    { cat "$TMP/out/count-$scen-$proxy.err" >&2; die "count_clients.py did not get ready against $proxy"; }
  # Attach to every thread (-f with -p attaches the whole process), then let the requests go.
  strace -c -f -p "$pid" -o "$sout" 2>"$serr" &
  spid=$!
  STARTED_PIDS+=("$spid")
  for ((i = 0; i < 100; i++)); do
    grep -q 'attached' "$serr" && break
    sleep 0.1
  done
  grep -q 'attached' "$serr" || { cat "$serr" >&2; die "strace could not attach to $proxy (pid $pid)"; }
  sleep 0.2
  kill -USR1 "$cpid"
  line=""
  for ((i = 0; i < 1300; i++)); do   # the client gives up after 120 s (--deadline)
    line=$(grep -m1 '^DONE ' "$TMP/out/count-$scen-$proxy.out" || true)
    [[ -n $line ]] && break
    kill -0 "$cpid" 2>/dev/null || break
    sleep 0.1
  done
  # Detach before the client closes its connections: the count covers the N requests only.
  kill -INT "$spid" 2>/dev/null || true
  wait "$spid" 2>/dev/null || true
  forget_pid "$spid"
  kill -TERM "$cpid" 2>/dev/null || true
  wait "$cpid" 2>/dev/null || true
  forget_pid "$cpid"
  [[ -n $line ]] || { cat "$TMP/out/count-$scen-$proxy.err" >&2; die "count_clients.py did not finish against $proxy"; }
  read -r _ ok failed skipped bytes secs <<<"$line"
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$scen" "$proxy" "$sout" "$ok" "$failed" "$skipped" "$bytes" "$secs" >>"$STRACE_TSV"
  log "strace $scen $proxy: $ok requests ($failed failed, $skipped not sent: time limit) in $secs s"
  check_alive "$proxy" || true
}
if ((BENCH_STRACE)); then
  for scen in $BENCH_SCENARIOS; do
    strace_run "$scen" nginx
    strace_run "$scen" gatehouse
  done
fi

# The proxies must still answer correctly after the load.
PROXIES_RUN="nginx gatehouse"
((BENCH_SELFCHECK)) && PROXIES_RUN+=" nginx-x2"
for proxy in $PROXIES_RUN; do
  if check_alive "$proxy"; then
    code=$(curl -s --max-time 5 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$(proxy_port "$proxy" http)/small" || true)
    [[ $code == 200 ]] || { DEAD[$proxy]="answers '$code' after the load runs"; log "ERROR: $proxy ${DEAD[$proxy]}"; }
  fi
done

RSS_END_GH=$(rss_kib "$GH_PID" 2>/dev/null || echo "")
RSS_END_NGX=$(rss_kib "$NGX_WORKER" 2>/dev/null || echo "")

# ---------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------
CPU_MODEL=$(awk -F': *' '/^model name/{print $2; exit}' /proc/cpuinfo)
[[ -n $CPU_MODEL ]] || CPU_MODEL=unknown
GH_REV=$(git -C "$REPO_ROOT" describe --always --dirty 2>/dev/null || echo unknown)
ENV_USED=$(env_used BENCH_SECONDS BENCH_REPEATS BENCH_WARMUP BENCH_IDLE_CONNS BENCH_IDLE_SETTLE BENCH_IDLE_PROXIES BENCH_SCENARIOS \
  BENCH_STRACE BENCH_SELFCHECK BENCH_SELFCHECK_SCENARIOS BENCH_QUIET_WAIT BENCH_RETRIES BENCH_PROXY_CPU BENCH_LOAD_CPU BENCH_RESULTS \
  BENCH_KEEP_TMP BENCH_NICE GATEHOUSE_BIN)

REPORT_DATE=$(date -u '+%Y-%m-%d %H:%M:%S UTC')
REPORT_NPROC=$NPROC
REPORT_CPU=$CPU_MODEL
REPORT_KERNEL=$(uname -r)
REPORT_NGINX=$("$NGINX" -v 2>&1 | head -n1 || true)
REPORT_WRK=$(wrk -v 2>&1 | head -n1 | sed 's/ Copyright.*//' || true)   # wrk -v exits 1
REPORT_OPENSSL=$(openssl version || true)
REPORT_STRACE=""
((BENCH_STRACE)) && REPORT_STRACE=$(strace -V 2>&1 | head -n1 || true)
REPORT_HAPROXY=$HA_VERSION
REPORT_GH="$GATEHOUSE_BIN (git $GH_REV)"
REPORT_CMD="${ENV_USED}${COMMAND_LINE}"
REPORT_PIN=$PIN_NOTE
REPORT_QUIET=""
((BENCH_QUIET_WAIT > 0)) && REPORT_QUIET="waited up to $BENCH_QUIET_WAIT s before each measured run for both cores to be quiet: $QUIET_WAITED s in all; $QUIET_MISSED runs started without a quiet moment. "
((BENCH_RETRIES > 0)) && REPORT_QUIET+="Runs disturbed by other work (10% or more of a core) measured again up to $BENCH_RETRIES times: $RETRIED repeated."
REPORT_TLS_NGX=$NGX_TLS_PARAMS
REPORT_TLS_GH=$GH_TLS_PARAMS
REPORT_IDLE_GH=${IDLE[gatehouse]:-}
REPORT_IDLE_NGX=${IDLE[nginx]:-}
REPORT_IDLE_HA=${IDLE[haproxy]:-}
REPORT_DEAD_NGX=${DEAD[nginx]:-}
REPORT_DEAD_GH=${DEAD[gatehouse]:-}
REPORT_DEAD_NGX2=${DEAD[nginx-x2]:-}
REPORT_SCENARIOS=$BENCH_SCENARIOS
REPORT_RSS_END="${RSS_END_GH:-n/a} ${RSS_END_NGX:-n/a}"
REPORT_LOAD="$LOAD_START before, $(cut -d' ' -f1-3 /proc/loadavg) after"
REPORT_PORTS="origin $ORIGIN_PORT; gatehouse $GH_HTTP_PORT/$GH_TLS_PORT; nginx $NGX_HTTP_PORT/$NGX_TLS_PORT; haproxy $HA_PORT; nginx x2 $NGX2_HTTP_PORT/$NGX2_TLS_PORT (hop $NGX2_HOP_PORT)"
BENCH_NICE=${BENCH_NICE:-}
export RUNS_TSV SCEN_TSV STRACE_TSV CLK_TCK BENCH_SECONDS BENCH_REPEATS BENCH_WARMUP BENCH_IDLE_CONNS BENCH_IDLE_SETTLE BENCH_NICE \
  BENCH_STRACE BENCH_SELFCHECK BENCH_SELFCHECK_SCENARIOS PROXY_CPU LOAD_CPU \
  REPORT_DATE REPORT_NPROC REPORT_CPU REPORT_KERNEL REPORT_NGINX REPORT_WRK REPORT_OPENSSL REPORT_STRACE \
  REPORT_HAPROXY REPORT_GH REPORT_CMD REPORT_PIN REPORT_QUIET REPORT_TLS_NGX REPORT_TLS_GH REPORT_IDLE_NGX REPORT_IDLE_GH \
  REPORT_IDLE_HA REPORT_DEAD_NGX REPORT_DEAD_GH REPORT_DEAD_NGX2 REPORT_SCENARIOS REPORT_RSS_END REPORT_LOAD \
  REPORT_PORTS
for s in $KNOWN_SCENARIOS; do export "REPORT_SCEN_${s//-/_}=${SCENARIO[$s]}"; done

"$PYTHON" "$SCRIPT_DIR/report.py" "$TMP/report.md" && report_rc=0 || report_rc=$?
publish_report "$report_rc" "$BENCH_RESULTS"
