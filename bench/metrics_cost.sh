#!/usr/bin/env bash
# bench/metrics_cost.sh: what Prometheus metrics cost per proxied request, on vs off, in one run.
#
#   micro  bench/metrics_bench: ns per call of the hot-path updates (one request's counters and
#          histogram, a labelled counter through the shard's cache, a connection open + close)
#   http   on 127.0.0.1 only, pinned as in run.sh (common.sh: the proxy under test alone on
#          BENCH_PROXY_CPU, wrk and the origin on BENCH_LOAD_CPU), ONE worker each, same origin
#          (nginx, 1 worker, a 100-byte answer):
#            gatehouse, metrics on    127.0.0.1:18380  ("metrics": {"enabled": true})
#            gatehouse, metrics off   127.0.0.1:18381  ("metrics": {"enabled": false})
#          `wrk -t1 -c50 -d<S>s` on /small, runs interleaved (on, off, on, off, ...); CPU µs per
#          request of each gatehouse process (utime + stime of all its threads from /proc).
#          The figure is the difference of the medians; the target is < 0.2 µs per request.
#
# Writes a Markdown report (default bench/metrics_results.md) and prints it.
#
# Environment:
#   BENCH_SECONDS      seconds per measured wrk run (default 5, 1..60)
#   BENCH_REPEATS      measured runs per configuration (default 3, 1..20)
#   BENCH_WARMUP       seconds of unrecorded warm-up per configuration (default 1, 0..10)
#   METRICS_PARTS      "micro http" (default), or one of them
#   METRICS_RESULTS    where to write the report (default bench/metrics_results.md)
#   BENCH_PROXY_CPU, BENCH_LOAD_CPU, BENCH_NICE, BENCH_KEEP_TMP   as in run.sh (common.sh)
#   GATEHOUSE_BIN      gatehouse program (default build-bench/examples/gatehouse/gatehouse)
#   METRICS_BENCH_BIN  metrics_bench program (default build-bench/bench/metrics_bench)
#                      Both defaults are brought up to date first with ninja in build-bench
#                      (set up as in run.sh when missing: release, NDEBUG).
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$SCRIPT_DIR/.." && pwd)
COMMAND_LINE="$0${*:+ $*}"
LOG_TAG=metrics-bench
# shellcheck source-path=SCRIPTDIR source=common.sh
source "$(dirname "$0")/common.sh"

BENCH_SECONDS=${BENCH_SECONDS:-5}
BENCH_REPEATS=${BENCH_REPEATS:-3}
BENCH_WARMUP=${BENCH_WARMUP:-1}
METRICS_PARTS=${METRICS_PARTS:-micro http}
METRICS_RESULTS=${METRICS_RESULTS:-$SCRIPT_DIR/metrics_results.md}
GATEHOUSE_BIN=${GATEHOUSE_BIN:-}
METRICS_BENCH_BIN=${METRICS_BENCH_BIN:-}

# Ports: 18300-18399, apart from run.sh's and auth_run.sh's.
ORIGIN_PORT=18300
ON_PORT=18380
OFF_PORT=18381
CONNS=50

check_int BENCH_SECONDS 1 60
check_int BENCH_REPEATS 1 20
check_int BENCH_WARMUP 0 10
DO_MICRO=0 DO_HTTP=0
for part in $METRICS_PARTS; do
  case $part in
    micro) DO_MICRO=1 ;;
    http) DO_HTTP=1 ;;
    *) die "unknown part '$part' in METRICS_PARTS (known: micro http)" ;;
  esac
done
((DO_MICRO || DO_HTTP)) || die "METRICS_PARTS is empty"
apply_nice

tools=(timeout awk)
((DO_HTTP)) && tools+=(nginx wrk curl pgrep getconf taskset)
require_tools "${tools[@]}"
if ((DO_HTTP)); then require_free_ports "$ORIGIN_PORT" "$ON_PORT" "$OFF_PORT"; fi

# Programs from build-bench (release, NDEBUG), brought up to date first (before the pinning, so
# the build may use every core).
targets=()
[[ -z $GATEHOUSE_BIN ]] && ((DO_HTTP)) && targets+=(examples/gatehouse/gatehouse)
[[ -z $METRICS_BENCH_BIN ]] && ((DO_MICRO)) && targets+=(bench/metrics_bench)
if ((${#targets[@]})); then
  if [[ ! -f $REPO_ROOT/build-bench/build.ninja ]]; then
    log "setting up $REPO_ROOT/build-bench (release, NDEBUG)"
    (cd "$REPO_ROOT" && meson setup build-bench -Dbuildtype=release -Db_ndebug=true) >&2
  fi
  log "building ${targets[*]} in build-bench"
  ninja -C "$REPO_ROOT/build-bench" "${targets[@]}" >&2 || die "the build failed (see above)"
fi
GATEHOUSE_BIN=${GATEHOUSE_BIN:-$REPO_ROOT/build-bench/examples/gatehouse/gatehouse}
METRICS_BENCH_BIN=${METRICS_BENCH_BIN:-$REPO_ROOT/build-bench/bench/metrics_bench}
if ((DO_HTTP)); then [[ -x $GATEHOUSE_BIN ]] || die "gatehouse program not found: $GATEHOUSE_BIN"; fi
if ((DO_MICRO)); then [[ -x $METRICS_BENCH_BIN ]] || die "metrics_bench program not found: $METRICS_BENCH_BIN"; fi

if ((DO_HTTP)); then setup_pinning; fi
make_scratch gatehouse-metrics-bench
mkdir -p "$TMP/out"
log "scratch directory: $TMP"
note_load ""

REPORT=$TMP/report.md
{
  echo "# Metrics cost: on vs off"
  echo
  echo "- date: $(date -u '+%Y-%m-%d %H:%M:%S UTC'); git $(git -C "$REPO_ROOT" describe --always --dirty 2>/dev/null || echo unknown)"
  echo "- CPU: $(awk -F': *' '/^model name/{print $2; exit}' /proc/cpuinfo), $(nproc --all) CPUs; load before: $LOAD_START"
  echo "- command: $(env_used BENCH_SECONDS BENCH_REPEATS BENCH_WARMUP METRICS_PARTS BENCH_PROXY_CPU BENCH_LOAD_CPU BENCH_NICE)$COMMAND_LINE"
  echo
} >"$REPORT"

# ---------------------------------------------------------------------------------------------
# Part 1: the hot-path updates in process
# ---------------------------------------------------------------------------------------------
if ((DO_MICRO)); then
  log "metrics_bench"
  timeout 120 "$METRICS_BENCH_BIN" >"$TMP/out/micro.tsv" 2>"$TMP/out/micro.err" ||
    { cat "$TMP/out/micro.err" >&2; die "metrics_bench failed"; }
  {
    echo "## In process (bench/metrics_bench, one thread, ns per call)"
    echo
    echo "| operation | ns |"
    echo "|---|---:|"
    tail -n +2 "$TMP/out/micro.tsv" | awk -F'\t' '{printf "| %s | %s |\n", $1, $2}'
    echo
  } >>"$REPORT"
fi

# ---------------------------------------------------------------------------------------------
# Part 2: through the gateway, metrics on vs off
# ---------------------------------------------------------------------------------------------
if ((DO_HTTP)); then
  NGINX=$(command -v nginx)
  CLK_TCK=$(getconf CLK_TCK)
  if ! ulimit -n 65536 2>/dev/null; then ulimit -n "$(ulimit -Hn)" 2>/dev/null || true; fi
  NOFILE=$(ulimit -n)
  [[ $NOFILE == unlimited ]] && NOFILE=1048576

  O=$TMP/origin
  mkdir -p "$O/logs"
  {
    nginx_common "$O"
    cat <<EOF
http {
$(nginx_temp_paths "$O")
  access_log off;
  keepalive_timeout 75s;
  keepalive_requests 1000000;
  server {
    listen 127.0.0.1:$ORIGIN_PORT;
    location / { default_type text/plain; return 200 "$SMALL_BODY"; }
  }
}
EOF
  } >"$O/nginx.conf"
  start_nginx ORIGIN "$O" "$ORIGIN_PORT"

  declare -A PID=()
  for mode in on off; do
    port=$ON_PORT enabled=true
    [[ $mode == off ]] && port=$OFF_PORT enabled=false
    cat >"$TMP/gatehouse-$mode.json" <<EOF
{
  "workers": 1,
  "drain_timeout_ms": 2000,
  "metrics": { "enabled": $enabled },
  "listeners": [ { "address": "127.0.0.1", "port": $port } ],
  "upstreams": { "origin": { "endpoints": ["127.0.0.1:$ORIGIN_PORT"], "max_idle_per_worker": 256 } },
  "routes": [ { "name": "all", "path": "/", "upstream": "origin" } ]
}
EOF
    "$GATEHOUSE_BIN" --check "$TMP/gatehouse-$mode.json" >"$TMP/out/check-$mode.log" 2>&1 ||
      { cat "$TMP/out/check-$mode.log" >&2; die "gatehouse rejected the configuration (metrics $mode)"; }
    "${ON_PROXY_CPU[@]}" "$GATEHOUSE_BIN" --config "$TMP/gatehouse-$mode.json" >"$TMP/out/gatehouse-$mode.log" 2>&1 &
    PID[$mode]=$!
    STARTED_PIDS+=("${PID[$mode]}")
    wait_http "http://127.0.0.1:$port/small" 10 || { cat "$TMP/out/gatehouse-$mode.log" >&2; die "gatehouse (metrics $mode) did not start"; }
    check_pinned "gatehouse (metrics $mode)" "$PROXY_CPU" "${PID[$mode]}" >/dev/null
    code=$(curl -s --max-time 5 -o "$TMP/out/body-$mode" -w '%{http_code}' "http://127.0.0.1:$port/small" || true)
    [[ $code == 200 && $(<"$TMP/out/body-$mode") == "$SMALL_BODY" ]] ||
      die "gatehouse (metrics $mode) answered '$code' or other bytes than the origin's"
  done
  log "gatehouse metrics on: pid ${PID[on]} :$ON_PORT; off: pid ${PID[off]} :$OFF_PORT; both on CPU $PROXY_CPU"

  RUNS=$TMP/runs.tsv
  : >"$RUNS"
  run_wrk() {  # mode index (0: warm-up, not recorded)
    local mode=$1 idx=$2 port=$ON_PORT secs=$BENCH_SECONDS out t0 t1 requests
    [[ $mode == off ]] && port=$OFF_PORT
    ((idx == 0)) && secs=$BENCH_WARMUP
    ((secs > 0)) || return 0
    kill -0 "${PID[$mode]}" 2>/dev/null || die "gatehouse (metrics $mode) is no longer running"
    out=$TMP/out/wrk-$mode-$idx.txt
    t0=$(cpu_ticks "${PID[$mode]}")
    timeout $((secs + 30)) wrk -t1 -c"$CONNS" -d"${secs}s" "http://127.0.0.1:$port/small" >"$out" 2>&1 ||
      die "wrk failed against metrics $mode (see $out with BENCH_KEEP_TMP=1)"
    t1=$(cpu_ticks "${PID[$mode]}")
    ((idx > 0)) || return 0
    requests=$(awk '/requests in/{print $1}' "$out")
    [[ -n $requests && $requests -gt 0 ]] || die "no requests in $out"
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$mode" "$idx" "$requests" "$((t1 - t0))" "$(wrk_rps "$out")" "$(wrk_errors "$out")" >>"$RUNS"
    log "$(printf 'metrics %-3s run %d: %s req/s, %.2f CPU µs/req%s' "$mode" "$idx" "$(wrk_rps "$out")" \
      "$(awk -v t=$((t1 - t0)) -v n="$requests" -v hz="$CLK_TCK" 'BEGIN{print t * 1e6 / hz / n}')" "$(wrk_errors "$out")")"
  }
  run_wrk on 0
  run_wrk off 0
  for ((r = 1; r <= BENCH_REPEATS; r++)); do
    run_wrk on "$r"
    run_wrk off "$r"
  done

  awk -F'\t' -v hz="$CLK_TCK" -v conns="$CONNS" -v secs="$BENCH_SECONDS" '
    function median(a, n,   i, j, t) {
      for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
      return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
    }
    { us = $4 * 1e6 / hz / $3; n[$1]++; cpu[$1, n[$1]] = us; rps[$1, n[$1]] = $5
      line[NR] = sprintf("| %s | %s | %s | %s | %.2f | %s |", $1, $2, $3, $5, us, $6 == "" ? "none" : $6) }
    END {
      for (m in n) { for (i = 1; i <= n[m]; i++) { c[i] = cpu[m, i]; q[i] = rps[m, i] } ; med[m] = median(c, n[m]); medr[m] = median(q, n[m]) }
      print "## Through the gateway (wrk -t1 -c" conns " -d" secs "s, /small, 100-byte answers)"
      print ""
      print "| metrics | CPU µs per request (median) | req/s (median) |"
      print "|---|---:|---:|"
      printf "| on | %.2f | %.0f |\n", med["on"], medr["on"]
      printf "| off | %.2f | %.0f |\n", med["off"], medr["off"]
      print ""
      printf "**Cost of metrics: %+.2f µs CPU per request** (median on − median off; target < 0.2 µs).\n", med["on"] - med["off"]
      print ""
      print "Every run (interleaved):"
      print ""
      print "| metrics | run | requests | req/s | CPU µs/req | errors |"
      print "|---|---:|---:|---:|---:|---|"
      for (i = 1; i <= NR; i++) print line[i]
      print ""
    }' "$RUNS" >>"$REPORT"
  echo "CPU µs per request: (utime + stime) of the gatehouse process during the run / requests wrk completed;" \
    "clock ticks of 1/$CLK_TCK s. Load after: $(cut -d' ' -f1-3 /proc/loadavg)." >>"$REPORT"
fi

publish_report 0 "$METRICS_RESULTS"
