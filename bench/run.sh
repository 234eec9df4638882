#!/usr/bin/env bash
# bench/run.sh: gatehouse vs nginx as reverse proxies, side by side, on one machine, in one run.
#
#   origin  nginx, 1 worker, 127.0.0.1:18000: /small (100 B), /64k, /1m (static files)
#   proxies (both up at the same time, ONE worker each, same origin):
#     gatehouse  http 127.0.0.1:18080   https 127.0.0.1:18443
#     nginx      http 127.0.0.1:18081   https 127.0.0.1:18444
#
# For each scenario the runs are interleaved (nginx, gatehouse, nginx, gatehouse, ...) with
# `wrk -t1 -c<N> -d<S>s --latency`; each figure in the table is the MEDIAN over the repeats
# (with the default 2 repeats: the mean of the two runs). See bench/README.md.
#
# Environment:
#   BENCH_SECONDS     seconds per measured wrk run (default 5)
#   BENCH_REPEATS     measured runs per proxy and scenario (default 2)
#   BENCH_WARMUP      seconds of unrecorded warm-up per proxy and scenario (default 1, 0: none)
#   BENCH_IDLE_CONNS  idle keep-alive connections for the memory test (default 2000, 0: skip)
#   BENCH_SCENARIOS   subset of "small 64k 1m tls-small" (default: all four)
#   BENCH_RESULTS     where to write the Markdown report (default bench/results.md)
#   BENCH_KEEP_TMP    non-empty: keep the scratch directory (configs, logs, raw wrk output)
#   BENCH_NICE        e.g. -10: renice this script, and so everything it starts, on a busy machine
#   GATEHOUSE_BIN     gatehouse program (default build-bench/examples/gatehouse/gatehouse, built
#                     with `meson setup build-bench -Dbuildtype=release -Db_ndebug=true` if missing)
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
BENCH_SCENARIOS=${BENCH_SCENARIOS:-small 64k 1m tls-small}
BENCH_RESULTS=${BENCH_RESULTS:-$SCRIPT_DIR/results.md}
GATEHOUSE_BIN=${GATEHOUSE_BIN:-}

ORIGIN_PORT=18000
GH_HTTP_PORT=18080
GH_TLS_PORT=18443
NGX_HTTP_PORT=18081
NGX_TLS_PORT=18444
ALL_PORTS=("$ORIGIN_PORT" "$GH_HTTP_PORT" "$GH_TLS_PORT" "$NGX_HTTP_PORT" "$NGX_TLS_PORT")

# scenario -> "path scheme connections"
declare -A SCENARIO=(
  [small]="/small http 50"
  [64k]="/64k http 50"
  [1m]="/1m http 10"
  [tls-small]="/small https 50"
)

is_uint "$BENCH_SECONDS" && ((BENCH_SECONDS >= 1)) || die "BENCH_SECONDS must be an integer >= 1"
is_uint "$BENCH_REPEATS" && ((BENCH_REPEATS >= 1)) || die "BENCH_REPEATS must be an integer >= 1"
is_uint "$BENCH_WARMUP" || die "BENCH_WARMUP must be an integer >= 0"
is_uint "$BENCH_IDLE_CONNS" || die "BENCH_IDLE_CONNS must be an integer >= 0"
apply_nice
for s in $BENCH_SCENARIOS; do
  [[ -n ${SCENARIO[$s]:-} ]] || die "unknown scenario '$s' in BENCH_SCENARIOS (known: small 64k 1m tls-small)"
done

# ---------------------------------------------------------------------------------------------
# Tools, limits, ports
# ---------------------------------------------------------------------------------------------
require_tools nginx wrk openssl curl python3 pgrep getconf sha256sum timeout
NGINX=$(command -v nginx)
# The real interpreter (python3 may be a wrapper such as a pyenv shim): $! must be the client itself.
PYTHON=$(python3 -c 'import sys; print(sys.executable)')
CLK_TCK=$(getconf CLK_TCK)

# Enough descriptors for the idle-connection test (both proxies inherit this limit).
if ! ulimit -n 65536 2>/dev/null; then
  hard=$(ulimit -Hn)
  [[ $hard == unlimited ]] && hard=1048576
  ulimit -n "$hard"
  log "warning: could not raise the descriptor limit to 65536; using the hard limit $hard"
fi
NOFILE=$(ulimit -n)
((NOFILE >= BENCH_IDLE_CONNS + 1024)) || die "descriptor limit $NOFILE is too low for $BENCH_IDLE_CONNS idle connections"

require_free_ports "${ALL_PORTS[@]}"

# ---------------------------------------------------------------------------------------------
# gatehouse binary (build it if missing)
# ---------------------------------------------------------------------------------------------
if [[ -z $GATEHOUSE_BIN ]]; then
  GATEHOUSE_BIN=$REPO_ROOT/build-bench/examples/gatehouse/gatehouse
  if [[ ! -x $GATEHOUSE_BIN ]]; then
    log "building gatehouse in $REPO_ROOT/build-bench (release, NDEBUG)"
    if [[ ! -f $REPO_ROOT/build-bench/build.ninja ]]; then
      (cd "$REPO_ROOT" && meson setup build-bench -Dbuildtype=release -Db_ndebug=true) >&2
    fi
    ninja -C "$REPO_ROOT/build-bench" examples/gatehouse/gatehouse >&2
  fi
fi
[[ -x $GATEHOUSE_BIN ]] || die "gatehouse program not found or not executable: $GATEHOUSE_BIN"

# ---------------------------------------------------------------------------------------------
# Scratch directory and cleanup
# ---------------------------------------------------------------------------------------------
make_scratch gatehouse-bench

# ---------------------------------------------------------------------------------------------
# Content, certificate, configurations
# ---------------------------------------------------------------------------------------------
mkdir -p "$TMP/origin/html" "$TMP/origin/logs" "$TMP/nginx/logs" "$TMP/tls" "$TMP/out"
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
    location / { }
  }
}
EOF
} >"$O/nginx.conf"

N=$TMP/nginx
{
  nginx_common "$N"
  cat <<EOF
http {
$(nginx_temp_paths "$N")
  access_log off;
  keepalive_timeout 75s;          # longer than the idle-connection measurement
  keepalive_requests 1000000;     # 1.22 default (1000) would make wrk reconnect every 1000 requests
  upstream origin {
    server 127.0.0.1:$ORIGIN_PORT;
    keepalive 256;
    keepalive_requests 1000000;
  }
  server {
    listen 127.0.0.1:$NGX_HTTP_PORT;
    location / {
      proxy_pass http://origin;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
  server {
    listen 127.0.0.1:$NGX_TLS_PORT ssl;
    ssl_certificate $TMP/tls/server.crt;
    ssl_certificate_key $TMP/tls/server.key;
    ssl_protocols TLSv1.2 TLSv1.3;   # 1.22's default stops at TLSv1.2; gatehouse offers 1.3
    location / {
      proxy_pass http://origin;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
EOF
} >"$N/nginx.conf"

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
start_nginx NGX "$N" "$NGX_HTTP_PORT"
log "origin nginx: master $ORIGIN_MASTER worker $ORIGIN_WORKER; proxy nginx: master $NGX_MASTER worker $NGX_WORKER"

"$GATEHOUSE_BIN" --check "$TMP/gatehouse.json" >"$TMP/gatehouse-check.log" 2>&1 ||
  { cat "$TMP/gatehouse-check.log" >&2; die "gatehouse rejected the benchmark configuration"; }
"$GATEHOUSE_BIN" --config "$TMP/gatehouse.json" >"$TMP/gatehouse.log" 2>&1 &
GH_PID=$!
STARTED_PIDS+=("$GH_PID")
wait_http "http://127.0.0.1:$GH_HTTP_PORT/" 10 || { cat "$TMP/gatehouse.log" >&2; die "gatehouse did not start"; }
GH_THREADS=(/proc/"$GH_PID"/task/*)
log "gatehouse: pid $GH_PID (${#GH_THREADS[@]} threads)"

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
done
log "both proxies answer 200 with the origin's bytes on /small, /64k, /1m over http and https"

tls_params() {  # port -> "TLSv1.3 TLS_AES_256_GCM_SHA384"
  timeout 5 openssl s_client -connect "127.0.0.1:$1" -brief </dev/null 2>&1 |
    awk -F': ' '/^Protocol version/{p=$2} /^Ciphersuite/{c=$2} END{print p " " c}' || true
}
NGX_TLS_PARAMS=$(tls_params "$NGX_TLS_PORT")
GH_TLS_PARAMS=$(tls_params "$GH_TLS_PORT")

# ---------------------------------------------------------------------------------------------
# Measurement helpers
# ---------------------------------------------------------------------------------------------
proxy_pid() { case $1 in nginx) echo "$NGX_WORKER" ;; gatehouse) echo "$GH_PID" ;; esac; }
proxy_port() {  # proxy scheme
  case $1/$2 in
    nginx/http) echo "$NGX_HTTP_PORT" ;; nginx/https) echo "$NGX_TLS_PORT" ;;
    gatehouse/http) echo "$GH_HTTP_PORT" ;; gatehouse/https) echo "$GH_TLS_PORT" ;;
  esac
}

declare -A DEAD=()   # proxy -> reason, once it has died
check_alive() {      # proxy
  local pid
  pid=$(proxy_pid "$1")
  if [[ -z ${DEAD[$1]:-} ]] && ! kill -0 "$pid" 2>/dev/null; then
    DEAD[$1]="process $pid exited"
    log "ERROR: $1 (pid $pid) is no longer running"
    if [[ $1 == gatehouse ]]; then
      wait "$GH_PID" 2>/dev/null && st=0 || st=$?
      DEAD[$1]="process exited with status $st"
      tail -n 20 "$TMP/gatehouse.log" >&2 || true
    else
      tail -n 20 "$N/logs/error.log" >&2 || true
    fi
  fi
  [[ -z ${DEAD[$1]:-} ]]
}

RUNS_TSV=$TMP/runs.tsv
printf 'scenario\tconns\tproxy\trun\twrk_file\twrk_rc\tticks_before\tticks_after\talive\n' >"$RUNS_TSV"

run_wrk() {  # scenario proxy run_index (0 = warm-up, not recorded)
  local scen=$1 proxy=$2 idx=$3 path scheme conns url pid secs out t0 t1 rc alive
  read -r path scheme conns <<<"${SCENARIO[$scen]}"
  url="$scheme://127.0.0.1:$(proxy_port "$proxy" "$scheme")$path"
  pid=$(proxy_pid "$proxy")
  secs=$BENCH_SECONDS
  ((idx == 0)) && secs=$BENCH_WARMUP
  out="$TMP/out/wrk-$scen-$proxy-$idx.txt"
  check_alive "$proxy" || return 0
  t0=$(cpu_ticks "$pid")
  timeout $((secs + 30)) wrk -t1 -c"$conns" -d"${secs}s" --latency "$url" >"$out" 2>&1 && rc=0 || rc=$?
  alive=1
  t1=$(cpu_ticks "$pid" 2>/dev/null) || t1=$t0
  check_alive "$proxy" || alive=0
  if ((idx > 0)); then
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$scen" "$conns" "$proxy" "$idx" "$out" "$rc" "$t0" "$t1" "$alive" >>"$RUNS_TSV"
    log "$(printf '%-9s %-9s run %d: %s req/s, %d CPU ticks%s' "$scen" "$proxy" "$idx" \
      "$(wrk_rps "$out")" $((t1 - t0)) "$(wrk_errors "$out")")"
  fi
  if ((rc != 0)); then log "warning: wrk exited with status $rc for $url"; fi
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
  sleep 2   # let the proxy settle (deferred frees, timers)
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

if ((BENCH_IDLE_CONNS > 0)); then
  idle_test nginx
  idle_test gatehouse
fi

# ---------------------------------------------------------------------------------------------
# Load runs, interleaved
# ---------------------------------------------------------------------------------------------
for scen in $BENCH_SCENARIOS; do
  if ((BENCH_WARMUP > 0)); then
    run_wrk "$scen" nginx 0
    run_wrk "$scen" gatehouse 0
  fi
  for ((r = 1; r <= BENCH_REPEATS; r++)); do
    run_wrk "$scen" nginx "$r"
    run_wrk "$scen" gatehouse "$r"
  done
done

# The proxies must still answer correctly after the load.
for proxy in nginx gatehouse; do
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
ENV_USED=$(env_used BENCH_SECONDS BENCH_REPEATS BENCH_WARMUP BENCH_IDLE_CONNS BENCH_SCENARIOS BENCH_RESULTS \
  BENCH_KEEP_TMP BENCH_NICE GATEHOUSE_BIN)

REPORT_DATE=$(date -u '+%Y-%m-%d %H:%M:%S UTC')
REPORT_NPROC=$(nproc)
REPORT_CPU=$CPU_MODEL
REPORT_KERNEL=$(uname -r)
REPORT_NGINX=$("$NGINX" -v 2>&1 | head -n1 || true)
REPORT_WRK=$(wrk -v 2>&1 | head -n1 | sed 's/ Copyright.*//' || true)   # wrk -v exits 1
REPORT_OPENSSL=$(openssl version || true)
REPORT_GH="$GATEHOUSE_BIN (git $GH_REV)"
REPORT_CMD="${ENV_USED}${COMMAND_LINE}"
REPORT_TLS_NGX=$NGX_TLS_PARAMS
REPORT_TLS_GH=$GH_TLS_PARAMS
REPORT_IDLE_NGX=${IDLE[nginx]:-}
REPORT_IDLE_GH=${IDLE[gatehouse]:-}
REPORT_DEAD_NGX=${DEAD[nginx]:-}
REPORT_DEAD_GH=${DEAD[gatehouse]:-}
REPORT_SCENARIOS=$BENCH_SCENARIOS
REPORT_RSS_END="${RSS_END_GH:-n/a} ${RSS_END_NGX:-n/a}"
REPORT_LOAD="$LOAD_START before, $(cut -d' ' -f1-3 /proc/loadavg) after"
REPORT_PORTS="origin $ORIGIN_PORT; gatehouse $GH_HTTP_PORT/$GH_TLS_PORT; nginx $NGX_HTTP_PORT/$NGX_TLS_PORT"
BENCH_NICE=${BENCH_NICE:-}
export RUNS_TSV CLK_TCK BENCH_SECONDS BENCH_REPEATS BENCH_WARMUP BENCH_IDLE_CONNS BENCH_NICE \
  REPORT_DATE REPORT_NPROC REPORT_CPU REPORT_KERNEL REPORT_NGINX REPORT_WRK REPORT_OPENSSL REPORT_GH \
  REPORT_CMD REPORT_TLS_NGX REPORT_TLS_GH REPORT_IDLE_NGX REPORT_IDLE_GH REPORT_DEAD_NGX REPORT_DEAD_GH \
  REPORT_SCENARIOS REPORT_RSS_END REPORT_LOAD REPORT_PORTS
for s in $BENCH_SCENARIOS; do export "REPORT_SCEN_${s//-/_}=${SCENARIO[$s]}"; done

python3 - "$TMP/report.md" <<'PY' && report_rc=0 || report_rc=$?
import os, re, statistics, sys

env = os.environ
UNIT_MS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}
UNIT_B = {"B": 1, "KB": 1024, "MB": 1024**2, "GB": 1024**3, "TB": 1024**4}

def lat_ms(text):
    m = re.fullmatch(r"([0-9.]+)(us|ms|s|m|h)", text)
    return float(m.group(1)) * UNIT_MS[m.group(2)] if m else None

def parse_wrk(path):
    r = {"requests": None, "rps": None, "p50": None, "p99": None, "bytes": None,
         "sock": {}, "non2xx": 0}
    try:
        text = open(path, errors="replace").read()
    except OSError:
        return r
    if m := re.search(r"^\s*(\d+) requests in ([0-9.]+\w+), ([0-9.]+)(B|KB|MB|GB|TB) read", text, re.M):
        r["requests"] = int(m.group(1))
        r["bytes"] = float(m.group(3)) * UNIT_B[m.group(4)]
    if m := re.search(r"^Requests/sec:\s+([0-9.]+)", text, re.M):
        r["rps"] = float(m.group(1))
    for pct, key in (("50", "p50"), ("99", "p99")):
        if m := re.search(r"^\s+%s%%\s+(\S+)" % pct, text, re.M):
            r[key] = lat_ms(m.group(1))
    if m := re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text):
        r["sock"] = {k: int(v) for k, v in zip(("connect", "read", "write", "timeout"), m.groups()) if int(v)}
    if m := re.search(r"Non-2xx or 3xx responses: (\d+)", text):
        r["non2xx"] = int(m.group(1))
    return r

clk = int(env["CLK_TCK"])
runs = []
with open(env["RUNS_TSV"]) as f:
    header = f.readline().rstrip("\n").split("\t")
    for line in f:
        row = dict(zip(header, line.rstrip("\n").split("\t")))
        w = parse_wrk(row["wrk_file"])
        ticks = int(row["ticks_after"]) - int(row["ticks_before"])
        alive = row["alive"] == "1"
        w["cpu_us"] = ticks * 1e6 / clk / w["requests"] if w["requests"] and alive else None
        w["ticks"] = ticks
        w.update(scenario=row["scenario"], conns=row["conns"], proxy=row["proxy"], run=int(row["run"]),
                 wrk_rc=int(row["wrk_rc"]), alive=row["alive"] == "1")
        runs.append(w)

def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None

def fmt(x, digits=0):
    if x is None:
        return "n/a"
    return f"{x:,.{digits}f}"

def fmt_ms(x):
    if x is None:
        return "n/a"
    return f"{x:.3f}" if x < 1 else f"{x:.2f}" if x < 100 else f"{x:.0f}"

def ratio(a, b):
    return f"{a / b:.2f}" if a is not None and b else "n/a"

def errors_of(rs):
    parts = []
    non2xx = sum(r["non2xx"] for r in rs)
    if non2xx:
        parts.append(f"{non2xx} non-2xx")
    sock = {}
    for r in rs:
        for k, v in r["sock"].items():
            sock[k] = sock.get(k, 0) + v
    parts += [f"{v} {k}" for k, v in sock.items()]
    bad_rc = [r["wrk_rc"] for r in rs if r["wrk_rc"] != 0]
    if bad_rc:
        parts.append(f"wrk exit {','.join(map(str, bad_rc))}")
    if any(not r["alive"] for r in rs):
        parts.append("process died")
    if any(r["requests"] is None for r in rs):
        parts.append("no wrk result")
    return ", ".join(parts)

scenarios = env["REPORT_SCENARIOS"].split()
dead = {"nginx": env.get("REPORT_DEAD_NGX", ""), "gatehouse": env.get("REPORT_DEAD_GH", "")}
reps = int(env["BENCH_REPEATS"])
out = []
P = out.append
P("# gatehouse vs nginx: reverse proxy benchmark")
P("")
P(f"- date: {env['REPORT_DATE']}")
P(f"- command: `{env['REPORT_CMD']}`")
P(f"- machine: {env['REPORT_NPROC']} CPUs, {env['REPORT_CPU']}, Linux {env['REPORT_KERNEL']}; "
  f"load average (1/5/15 min) {env['REPORT_LOAD']}")
P(f"- versions: {env['REPORT_NGINX']}; {env['REPORT_WRK']}; {env['REPORT_OPENSSL']}")
P(f"- gatehouse: {env['REPORT_GH']}")
P(f"- each proxy: ONE worker; origin: nginx, 1 worker; wrk -t1; ports: {env['REPORT_PORTS']}")
P(f"- TLS negotiated by wrk's OpenSSL: gatehouse {env['REPORT_TLS_GH'] or 'n/a'}; nginx {env['REPORT_TLS_NGX'] or 'n/a'}")
P(f"- each figure: MEDIAN of {reps} interleaved {env['BENCH_SECONDS']} s runs per proxy"
  + (" (with 2 runs: their mean)" if reps == 2 else "")
  + f", after {env['BENCH_WARMUP']} s of unrecorded warm-up; every ratio is gatehouse / nginx")
load_before = float(env["REPORT_LOAD"].split()[0])
if load_before > int(env["REPORT_NPROC"]) / 2:
    P("")
    P(f"> **Warning:** the 1-minute load average was {load_before:.2f} on {env['REPORT_NPROC']} CPUs when the "
      "benchmark started: other processes competed for the CPUs, so req/s and latency are unreliable; "
      "CPU µs/req is less affected. Rerun on a quiet machine"
      + ("" if env.get("BENCH_NICE") else " (or with BENCH_NICE=-10)") + " for firm figures.")
P("")
P("| scenario | wrk -c | req/s gatehouse | req/s nginx | ratio | p50 ms gatehouse | p50 ms nginx | ratio "
  "| p99 ms gatehouse | p99 ms nginx | ratio | CPU µs/req gatehouse | CPU µs/req nginx | ratio | errors |")
P("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
any_errors = False
for s in scenarios:
    path, scheme, conns = env["REPORT_SCEN_" + s.replace("-", "_")].split()
    agg = {}
    errs = []
    for p in ("gatehouse", "nginx"):
        rs = [r for r in runs if r["scenario"] == s and r["proxy"] == p]
        ok = [r for r in rs if r["alive"]]   # a run during which the proxy died is not a measurement
        agg[p] = {k: med([r[k] for r in ok]) for k in ("rps", "p50", "p99", "cpu_us")}
        e = errors_of(rs)
        if not rs:
            e = "not measured" + (f" ({dead[p]})" if dead[p] else "")
        if e:
            errs.append(f"{p}: {e}")
    any_errors |= bool(errs)
    g, n = agg["gatehouse"], agg["nginx"]
    P(f"| {s} ({scheme} {path}) | {conns} | {fmt(g['rps'])} | {fmt(n['rps'])} | {ratio(g['rps'], n['rps'])} "
      f"| {fmt_ms(g['p50'])} | {fmt_ms(n['p50'])} | {ratio(g['p50'], n['p50'])} "
      f"| {fmt_ms(g['p99'])} | {fmt_ms(n['p99'])} | {ratio(g['p99'], n['p99'])} "
      f"| {fmt(g['cpu_us'], 1)} | {fmt(n['cpu_us'], 1)} | {ratio(g['cpu_us'], n['cpu_us'])} "
      f"| {'; '.join(errs) or 'none'} |")
P("")

def idle_line(p, raw):
    if not raw:
        return f"{p}: not measured" + (f" ({dead[p]})" if dead[p] else "")
    before, after, opened, failed, established, closed = map(int, raw.split())
    per = (after - before) / opened if opened else None
    s = f"{p}: **{fmt(per, 2)} KiB**/conn (RSS {before:,} → {after:,} KiB, {opened} idle connections"
    if failed:
        s += f", {failed} FAILED to open"
    if established >= 0:
        s += f", {established} established at the proxy when measured"
    if closed > 0:
        s += f", {closed} closed by the proxy before the end of the hold"
    return s + ")", per

if int(env["BENCH_IDLE_CONNS"]) > 0:
    gi = idle_line("gatehouse", env.get("REPORT_IDLE_GH", ""))
    ni = idle_line("nginx", env.get("REPORT_IDLE_NGX", ""))
    gtext, gper = (gi if isinstance(gi, tuple) else (gi, None))
    ntext, nper = (ni if isinstance(ni, tuple) else (ni, None))
    P(f"**Memory per idle keep-alive connection** (RSS of the proxy process, (after − before) / N, "
      f"N = {env['BENCH_IDLE_CONNS']}, each past one GET /small): {gtext}; {ntext}; "
      f"ratio {ratio(gper, nper)}")
    P("")
rss_gh, rss_ngx = env["REPORT_RSS_END"].split()
P(f"RSS of the proxy process after all the runs: gatehouse {rss_gh} KiB, nginx worker {rss_ngx} KiB.")
P("")
for p in ("gatehouse", "nginx"):
    if dead[p]:
        P(f"**{p} FAILED during the benchmark: {dead[p]}**")
        P("")
        any_errors = True

P("<details><summary>Every measured run</summary>")
P("")
P("| scenario | proxy | run | requests | req/s | p50 ms | p99 ms | CPU ticks | CPU µs/req | bytes/resp | errors |")
P("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
for r in runs:
    bpr = r["bytes"] / r["requests"] if r["bytes"] and r["requests"] else None
    P(f"| {r['scenario']} | {r['proxy']} | {r['run']} | {fmt(r['requests'])} | {fmt(r['rps'])} "
      f"| {fmt_ms(r['p50'])} | {fmt_ms(r['p99'])} | {r['ticks']} | {fmt(r['cpu_us'], 1)} | {fmt(bpr)} "
      f"| {errors_of([r]) or 'none'} |")
P("")
P("</details>")
open(sys.argv[1], "w").write("\n".join(out) + "\n")
sys.exit(3 if any_errors else 0)
PY
publish_report "$report_rc" "$BENCH_RESULTS"
