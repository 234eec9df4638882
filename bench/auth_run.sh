#!/usr/bin/env bash
# bench/auth_run.sh: what JWT authentication costs, per algorithm and per proxied request.
#
#   micro  bench/auth_bench: verifications per second per JWS algorithm, one thread, gatehouse's
#          JwtVerifier with the cache off next to OpenSSL EVP verifying the same signing input
#          with the same key, and the cost of a cache hit; `openssl speed` for the same primitives.
#   http   on 127.0.0.1 only, ONE worker each, in front of the same origin (nginx, 1 worker,
#          a 100-byte answer to every path):
#            nginx proxy, no auth               127.0.0.1:18101  /open/small
#            gatehouse, no auth                 127.0.0.1:18180  /open/small
#            gatehouse, RS256, cache on         127.0.0.1:18180  /cached/small
#            gatehouse, RS256, cache off        127.0.0.1:18180  /uncached/small
#          `wrk -t1 -c50 -d<S>s --latency -H "Authorization: Bearer <token>"`: the same RS256 token
#          on every request, in every configuration (checked or not, the client sends it), so with
#          the cache off every request pays the full verification; runs interleaved; CPU µs per
#          request of the proxy process from /proc, as in run.sh.
#
# Writes a Markdown report (default bench/auth_results.md). See bench/README.md.
#
# Environment:
#   AUTH_PARTS          "micro http" (default), or one of them
#   AUTH_BENCH_SECONDS  CPU seconds per algorithm and method in auth_bench (default 1, 0.05..10)
#   BENCH_SECONDS       seconds per measured wrk run (default 5, 1..60)
#   BENCH_REPEATS       measured runs per configuration (default 2, 1..10)
#   BENCH_WARMUP        seconds of unrecorded warm-up per configuration (default 1, 0..10)
#   AUTH_RESULTS        where to write the report (default bench/auth_results.md)
#   BENCH_KEEP_TMP      non-empty: keep the scratch directory (configs, token, logs, raw output)
#   BENCH_NICE          e.g. -10: renice this script, and so everything it starts
#   GATEHOUSE_BIN       gatehouse program (default build-bench/examples/gatehouse/gatehouse)
#   AUTH_BENCH_BIN      auth_bench program (default build-bench/bench/auth_bench)
#                       Both defaults are brought up to date first with
#                       `ninja -C build-bench -j<nproc> examples/gatehouse/gatehouse bench/auth_bench`
#                       (build-bench is set up as in run.sh when missing).
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$SCRIPT_DIR/.." && pwd)
COMMAND_LINE="$0${*:+ $*}"
LOG_TAG=auth-bench
# shellcheck source-path=SCRIPTDIR source=common.sh
source "$(dirname "$0")/common.sh"

AUTH_PARTS=${AUTH_PARTS:-micro http}
AUTH_BENCH_SECONDS=${AUTH_BENCH_SECONDS:-1}
BENCH_SECONDS=${BENCH_SECONDS:-5}
BENCH_REPEATS=${BENCH_REPEATS:-2}
BENCH_WARMUP=${BENCH_WARMUP:-1}
AUTH_RESULTS=${AUTH_RESULTS:-$SCRIPT_DIR/auth_results.md}
GATEHOUSE_BIN=${GATEHOUSE_BIN:-}
AUTH_BENCH_BIN=${AUTH_BENCH_BIN:-}

# Ports: 18100-18199, apart from run.sh's.
ORIGIN_PORT=18100
NGX_PORT=18101
GH_PORT=18180
ALL_PORTS=("$ORIGIN_PORT" "$NGX_PORT" "$GH_PORT")
CONNS=50
ISSUER="https://login.example.com/"
AUDIENCE="orders-api"

# configuration -> "proxy path"; every request carries the token, checked or not, as a client would
# send it whatever the proxy does with it
CONFIGS=(nginx open cached uncached)
declare -A CONFIG=(
  [nginx]="nginx /open/small"
  [open]="gatehouse /open/small"
  [cached]="gatehouse /cached/small"
  [uncached]="gatehouse /uncached/small"
)
declare -A LABEL=(
  [nginx]="nginx proxy, no auth"
  [open]="gatehouse, no auth"
  [cached]="gatehouse, RS256, cache on"
  [uncached]="gatehouse, RS256, cache off"
)

check_int BENCH_SECONDS 1 60
check_int BENCH_REPEATS 1 10
check_int BENCH_WARMUP 0 10
awk -v s="$AUTH_BENCH_SECONDS" 'BEGIN{exit !(s ~ /^[0-9]*\.?[0-9]+$/ && s >= 0.05 && s <= 10)}' ||
  die "AUTH_BENCH_SECONDS must be a number in 0.05..10"
DO_MICRO=0 DO_HTTP=0
for part in $AUTH_PARTS; do
  case $part in
    micro) DO_MICRO=1 ;;
    http) DO_HTTP=1 ;;
    *) die "unknown part '$part' in AUTH_PARTS (known: micro http)" ;;
  esac
done
((DO_MICRO || DO_HTTP)) || die "AUTH_PARTS is empty"
apply_nice

# ---------------------------------------------------------------------------------------------
# Tools, ports, programs
# ---------------------------------------------------------------------------------------------
tools=(openssl python3 timeout)
((DO_HTTP)) && tools+=(nginx wrk curl pgrep getconf sha256sum)
require_tools "${tools[@]}"
if ((DO_HTTP)); then require_free_ports "${ALL_PORTS[@]}"; fi

# The default programs come from build-bench (release, NDEBUG), brought up to date first so that
# the figures are those of the tree as it is.
targets=()
[[ -z $GATEHOUSE_BIN ]] && ((DO_HTTP)) && targets+=(examples/gatehouse/gatehouse)
[[ -z $AUTH_BENCH_BIN ]] && ((DO_MICRO)) && targets+=(bench/auth_bench)
if ((${#targets[@]})); then
  if [[ ! -f $REPO_ROOT/build-bench/build.ninja ]]; then
    log "setting up $REPO_ROOT/build-bench (release, NDEBUG)"
    (cd "$REPO_ROOT" && meson setup build-bench -Dbuildtype=release -Db_ndebug=true) >&2
  fi
  log "building ${targets[*]} in build-bench"
  ninja -C "$REPO_ROOT/build-bench" -j"$(nproc)" "${targets[@]}" >&2 || die "the build failed (see above)"
fi
GATEHOUSE_BIN=${GATEHOUSE_BIN:-$REPO_ROOT/build-bench/examples/gatehouse/gatehouse}
AUTH_BENCH_BIN=${AUTH_BENCH_BIN:-$REPO_ROOT/build-bench/bench/auth_bench}
if ((DO_HTTP)); then [[ -x $GATEHOUSE_BIN ]] || die "gatehouse program not found: $GATEHOUSE_BIN"; fi
if ((DO_MICRO)); then [[ -x $AUTH_BENCH_BIN ]] || die "auth_bench program not found: $AUTH_BENCH_BIN"; fi

# ---------------------------------------------------------------------------------------------
# Scratch directory and cleanup (as in run.sh: everything started here is stopped on exit)
# ---------------------------------------------------------------------------------------------
# As in run.sh: the proxies on CPU 0 alone, this script and everything else (auth_bench, origin,
# wrk) on CPU 1 (BENCH_PROXY_CPU, BENCH_LOAD_CPU).
setup_pinning
make_scratch gatehouse-auth-bench

mkdir -p "$TMP/out"
log "scratch directory: $TMP"
note_load ""

# ---------------------------------------------------------------------------------------------
# Part 1: verifications per second, in process, next to OpenSSL
# ---------------------------------------------------------------------------------------------
MICRO_TSV=$TMP/out/auth_bench.tsv
SPEED_OUT=$TMP/out/openssl-speed.txt
: >"$MICRO_TSV"
: >"$SPEED_OUT"
if ((DO_MICRO)); then
  log "auth_bench: 13 algorithms x 3 methods x ${AUTH_BENCH_SECONDS} CPU s, plus cache hits"
  AUTH_BENCH_SECONDS=$AUTH_BENCH_SECONDS timeout 600 "$AUTH_BENCH_BIN" --tsv >"$MICRO_TSV" 2>"$TMP/out/auth_bench.err" ||
    { cat "$TMP/out/auth_bench.err" >&2; die "auth_bench failed"; }
  # openssl speed divides by CPU time, as auth_bench does. The HMAC runs use the HS* signing
  # input length, so their blocks per second are verifications per second of the bare MAC.
  log "openssl speed: rsa2048 ecdsap256 ecdsap384 ecdsap521 ed25519, and HMAC-SHA2 over the signing input"
  timeout 120 openssl speed -seconds 1 -mr rsa2048 ecdsap256 ecdsap384 ecdsap521 ed25519 >>"$SPEED_OUT" 2>&1 ||
    die "openssl speed failed (see $SPEED_OUT with BENCH_KEEP_TMP=1)"
  for d in sha256 sha384 sha512; do
    bytes=$(awk -F'\t' -v a="HS${d#sha}" '$1 == a {print $3}' "$MICRO_TSV")
    [[ -n $bytes ]] || continue   # not in AUTH_BENCH_ALGS
    echo "+BYTES:hmac($d):$bytes" >>"$SPEED_OUT"
    timeout 60 openssl speed -seconds 1 -mr -bytes "$bytes" -hmac "$d" >>"$SPEED_OUT" 2>&1 ||
      die "openssl speed -hmac $d failed"
  done
fi

# ---------------------------------------------------------------------------------------------
# Part 2: through the gateway
# ---------------------------------------------------------------------------------------------
RUNS_TSV=$TMP/runs.tsv
printf 'config\trun\twrk_file\twrk_rc\tticks_before\tticks_after\talive\n' >"$RUNS_TSV"
declare -A DEAD=()
TOKEN_BYTES=""
if ((DO_HTTP)); then
  NGINX=$(command -v nginx)
  CLK_TCK=$(getconf CLK_TCK)
  if ! ulimit -n 65536 2>/dev/null; then ulimit -n "$(ulimit -Hn)" 2>/dev/null || true; fi
  NOFILE=$(ulimit -n)
  [[ $NOFILE == unlimited ]] && NOFILE=1048576

  # An RS256 key pair and a token like an OpenID Connect provider's access token (the claims of
  # auth_bench), valid for 6 hours.
  mkdir -p "$TMP/jwt"
  if ! openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$TMP/jwt/private.pem" 2>"$TMP/jwt/openssl.log" ||
    ! openssl pkey -in "$TMP/jwt/private.pem" -pubout -out "$TMP/jwt/public.pem" 2>>"$TMP/jwt/openssl.log"; then
    cat "$TMP/jwt/openssl.log" >&2
    die "openssl could not generate the RS256 key"
  fi
  python3 - "$TMP/jwt" "$ISSUER" "$AUDIENCE" <<'PY' || die "could not mint the benchmark token"
import base64, json, subprocess, sys, time
d, iss, aud = sys.argv[1:4]
b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
now = int(time.time())
header = {"alg": "RS256", "typ": "JWT"}
claims = {"iss": iss, "sub": "auth0|5f7c8ec7c33c6c004bbafe82", "aud": [aud, iss + "userinfo"],
          "azp": "2Vh9Xq1mKcPzR8sT4uW6yB0dF3gJ5lN7", "exp": now + 6 * 3600, "iat": now, "nbf": now,
          "jti": "b6f1c0e2-7d4a-4c1e-9a35-3e8f2d6b9c71",
          "scope": "openid profile email orders:read orders:write inventory:read",
          "email": "alice.martin@example.com", "email_verified": True, "name": "Alice Martin",
          "tenant": "acme-europe", "roles": ["customer", "beta-tester"]}
enc = lambda o: b64(json.dumps(o, separators=(",", ":")).encode())
signing_input = enc(header) + "." + enc(claims)
sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", d + "/private.pem", "-binary"],
                     input=signing_input.encode(), capture_output=True, check=True).stdout
token = signing_input + "." + b64(sig)
open(d + "/token", "w").write(token)
# A forgery: the same token with another subject and the original signature.
claims["sub"] = "admin"
open(d + "/forged", "w").write(enc(header) + "." + enc(claims) + "." + b64(sig))
PY
  TOKEN=$(<"$TMP/jwt/token")
  FORGED=$(<"$TMP/jwt/forged")
  TOKEN_BYTES=${#TOKEN}

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

  N=$TMP/nginx
  mkdir -p "$N/logs"
  {
    nginx_common "$N"
    cat <<EOF
http {
$(nginx_temp_paths "$N")
  access_log off;
  keepalive_timeout 75s;
  keepalive_requests 1000000;     # 1.22 default (1000) would make wrk reconnect every 1000 requests
  upstream origin {
    server 127.0.0.1:$ORIGIN_PORT;
    keepalive 256;
    keepalive_requests 1000000;
  }
  server {
    listen 127.0.0.1:$NGX_PORT;
    location / {
      proxy_pass http://origin;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
EOF
  } >"$N/nginx.conf"

  auth_options() {  # cache enabled: true|false
    cat <<EOF
{ "issuers": [ { "issuer": "$ISSUER", "pem_file": "$TMP/jwt/public.pem" } ],
          "algorithms": ["RS256"], "audiences": ["$AUDIENCE"],
          "cache": { "enabled": $1 } }
EOF
  }
  cat >"$TMP/gatehouse.json" <<EOF
{
  "workers": 1,
  "drain_timeout_ms": 2000,
  "listeners": [ { "address": "127.0.0.1", "port": $GH_PORT } ],
  "upstreams": { "origin": { "endpoints": ["127.0.0.1:$ORIGIN_PORT"], "max_idle_per_worker": 256 } },
  "routes": [
    { "name": "open", "path": "/open", "upstream": "origin" },
    { "name": "cached", "path": "/cached", "upstream": "origin",
      "middleware": [ { "name": "authenticate", "options": $(auth_options true) } ] },
    { "name": "uncached", "path": "/uncached", "upstream": "origin",
      "middleware": [ { "name": "authenticate", "options": $(auth_options false) } ] }
  ]
}
EOF

  start_nginx ORIGIN "$O" "$ORIGIN_PORT"
  start_nginx NGX "$N" "$NGX_PORT" proxy
  "$GATEHOUSE_BIN" --check "$TMP/gatehouse.json" >"$TMP/gatehouse-check.log" 2>&1 ||
    { cat "$TMP/gatehouse-check.log" >&2
      die "gatehouse rejected the benchmark configuration (an old binary? set GATEHOUSE_BIN or rebuild build-bench)"; }
  # The authenticate middleware logs every refusal on stderr: only the checks below cause any.
  "${ON_PROXY_CPU[@]}" "$GATEHOUSE_BIN" --config "$TMP/gatehouse.json" >"$TMP/gatehouse.log" 2>&1 &
  GH_PID=$!
  STARTED_PIDS+=("$GH_PID")
  wait_http "http://127.0.0.1:$GH_PORT/open/small" 10 || { cat "$TMP/gatehouse.log" >&2; die "gatehouse did not start"; }
  log "origin nginx worker $ORIGIN_WORKER; nginx proxy worker $NGX_WORKER; gatehouse pid $GH_PID"
  n_gh=$(check_pinned gatehouse "$PROXY_CPU" "$GH_PID")
  n_ngx=$(check_pinned "nginx proxy" "$PROXY_CPU" "$NGX_MASTER" "$NGX_WORKER")
  check_pinned origin "$LOAD_CPU" "$ORIGIN_MASTER" "$ORIGIN_WORKER" >/dev/null
  PIN_NOTE="gatehouse ($n_gh threads) and nginx proxy master + worker ($n_ngx threads) on CPU $PROXY_CPU only; origin nginx and wrk on CPU $LOAD_CPU only"

  # Correctness before any measurement.
  expect() {  # label want_code url [token]
    local label=$1 want=$2 url=$3 token=${4:-} code
    local args=(-s --max-time 5 -o "$TMP/out/check.body" -w '%{http_code}')
    [[ -n $token ]] && args+=(-H "Authorization: Bearer $token")
    code=$(curl "${args[@]}" "$url" || true)
    [[ $code == "$want" ]] || die "$label: $url answered HTTP '${code:-none}', expected $want (before any measurement)"
    if [[ $want == 200 ]] && [[ $(<"$TMP/out/check.body") != "$SMALL_BODY" ]]; then
      die "$label: $url returned another body than the origin's"
    fi
  }
  expect "nginx" 200 "http://127.0.0.1:$NGX_PORT/open/small"
  expect "gatehouse, no auth" 200 "http://127.0.0.1:$GH_PORT/open/small"
  for route in cached uncached; do
    expect "gatehouse $route, token" 200 "http://127.0.0.1:$GH_PORT/$route/small" "$TOKEN"
    expect "gatehouse $route, token again" 200 "http://127.0.0.1:$GH_PORT/$route/small" "$TOKEN"
    expect "gatehouse $route, no token" 401 "http://127.0.0.1:$GH_PORT/$route/small"
    expect "gatehouse $route, forged token" 401 "http://127.0.0.1:$GH_PORT/$route/small" "$FORGED"
  done
  log "checks passed: 200 with the origin's body with the token, 401 without it and with a forged one"
  refusals() { grep -c '^gatehouse: [a-z]*: authenticate: credential' "$TMP/gatehouse.log" || true; }
  REFUSALS_BEFORE=$(refusals)

  proxy_pid() { case $1 in nginx) echo "$NGX_WORKER" ;; gatehouse) echo "$GH_PID" ;; esac; }
  proxy_port() { case $1 in nginx) echo "$NGX_PORT" ;; gatehouse) echo "$GH_PORT" ;; esac; }
  check_alive() {  # proxy
    local pid
    pid=$(proxy_pid "$1")
    if [[ -z ${DEAD[$1]:-} ]] && ! kill -0 "$pid" 2>/dev/null; then
      DEAD[$1]="process $pid exited"
      log "ERROR: $1 (pid $pid) is no longer running"
    fi
    [[ -z ${DEAD[$1]:-} ]]
  }

  run_wrk() {  # config run_index (0 = warm-up, not recorded)
    local cfg=$1 idx=$2 proxy path url pid secs out t0 t1 rc alive
    read -r proxy path <<<"${CONFIG[$cfg]}"
    url="http://127.0.0.1:$(proxy_port "$proxy")$path"
    pid=$(proxy_pid "$proxy")
    secs=$BENCH_SECONDS
    ((idx == 0)) && secs=$BENCH_WARMUP
    out="$TMP/out/wrk-$cfg-$idx.txt"
    check_alive "$proxy" || return 0
    t0=$(cpu_ticks "$pid")
    timeout $((secs + 30)) wrk -t1 -c"$CONNS" -d"${secs}s" --latency -H "Authorization: Bearer $TOKEN" "$url" \
      >"$out" 2>&1 && rc=0 || rc=$?
    alive=1
    t1=$(cpu_ticks "$pid" 2>/dev/null) || t1=$t0
    check_alive "$proxy" || alive=0
    if ((idx > 0)); then
      printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$cfg" "$idx" "$out" "$rc" "$t0" "$t1" "$alive" >>"$RUNS_TSV"
      log "$(printf '%-9s run %d: %s req/s, %d CPU ticks%s' "$cfg" "$idx" \
        "$(wrk_rps "$out")" $((t1 - t0)) "$(wrk_errors "$out")")"
    fi
    if ((rc != 0)); then log "warning: wrk exited with status $rc for $url"; fi
  }

  if ((BENCH_WARMUP > 0)); then
    for cfg in "${CONFIGS[@]}"; do run_wrk "$cfg" 0; done
  fi
  for ((r = 1; r <= BENCH_REPEATS; r++)); do
    for cfg in "${CONFIGS[@]}"; do run_wrk "$cfg" "$r"; done
  done
  for proxy in nginx gatehouse; do
    if check_alive "$proxy"; then
      code=$(curl -s --max-time 5 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$(proxy_port "$proxy")/open/small" || true)
      [[ $code == 200 ]] || { DEAD[$proxy]="answers '$code' after the load runs"; log "ERROR: $proxy ${DEAD[$proxy]}"; }
    fi
  done
  # Refusals during the load would mean the token stopped verifying.
  REFUSALS=$(($(refusals) - REFUSALS_BEFORE))
fi

# ---------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------
CPU_MODEL=$(awk -F': *' '/^model name/{print $2; exit}' /proc/cpuinfo)
GH_REV=$(git -C "$REPO_ROOT" describe --always --dirty 2>/dev/null || echo unknown)
ENV_USED=$(env_used AUTH_PARTS AUTH_BENCH_SECONDS BENCH_SECONDS BENCH_REPEATS BENCH_WARMUP AUTH_RESULTS \
  BENCH_KEEP_TMP BENCH_NICE BENCH_PROXY_CPU BENCH_LOAD_CPU GATEHOUSE_BIN AUTH_BENCH_BIN)
export MICRO_TSV SPEED_OUT RUNS_TSV DO_MICRO DO_HTTP BENCH_SECONDS BENCH_REPEATS BENCH_WARMUP AUTH_BENCH_SECONDS CONNS
CLK_TCK=${CLK_TCK:-100}
REFUSALS=${REFUSALS:-0}
REPORT_DATE=$(date -u '+%Y-%m-%d %H:%M:%S UTC')
REPORT_NPROC=$NPROC
REPORT_PIN=${PIN_NOTE:-auth_bench on CPU $LOAD_CPU}
REPORT_CPU=${CPU_MODEL:-unknown}
REPORT_KERNEL=$(uname -r)
REPORT_OPENSSL=$(openssl version || true)
REPORT_NGINX=""
REPORT_WRK=""
if ((DO_HTTP)); then
  REPORT_NGINX=$(nginx -v 2>&1 | head -n1 || true)
  REPORT_WRK=$(wrk -v 2>&1 | head -n1 | sed 's/ Copyright.*//' || true)   # wrk -v exits 1
fi
REPORT_GH="git $GH_REV; gatehouse ${GATEHOUSE_BIN#"$REPO_ROOT"/}; auth_bench ${AUTH_BENCH_BIN#"$REPO_ROOT"/}"
REPORT_CMD="${ENV_USED}${COMMAND_LINE}"
REPORT_LOAD="$LOAD_START before, $(cut -d' ' -f1-3 /proc/loadavg) after"
REPORT_DEAD_NGX=${DEAD[nginx]:-}
REPORT_DEAD_GH=${DEAD[gatehouse]:-}
export CLK_TCK TOKEN_BYTES REFUSALS REPORT_DATE REPORT_NPROC REPORT_CPU REPORT_KERNEL REPORT_OPENSSL \
  REPORT_NGINX REPORT_WRK REPORT_GH REPORT_CMD REPORT_LOAD REPORT_DEAD_NGX REPORT_DEAD_GH REPORT_PIN
for cfg in "${CONFIGS[@]}"; do export "REPORT_CFG_$cfg=${LABEL[$cfg]}|${CONFIG[$cfg]}"; done

python3 - "$TMP/report.md" <<'PY' && report_rc=0 || report_rc=$?
import os, re, statistics, sys

env = os.environ
out = []
P = out.append
errors = False

def fmt(x, digits=0):
    return "n/a" if x is None else f"{x:,.{digits}f}"

def ratio(a, b):
    return f"{a / b:.2f}" if a is not None and b else "n/a"

P("# gatehouse: JWT authentication benchmark")
P("")
P(f"- date: {env['REPORT_DATE']}")
P(f"- command: `{env['REPORT_CMD']}`")
P(f"- machine: {env['REPORT_NPROC']} CPUs, {env['REPORT_CPU']}, Linux {env['REPORT_KERNEL']}; "
  f"load average (1/5/15 min) {env['REPORT_LOAD']}")
P(f"- versions: {env['REPORT_OPENSSL']}"
  + (f"; {env['REPORT_NGINX']}; {env['REPORT_WRK']}" if env["DO_HTTP"] == "1" else ""))
P(f"- programs: {env['REPORT_GH']} (release build)")
P(f"- pinning (checked on every thread): {env['REPORT_PIN']}")
load_before = float(env["REPORT_LOAD"].split()[0])
if load_before > int(env["REPORT_NPROC"]) / 2:
    P("")
    P(f"> **Warning:** the 1-minute load average was {load_before:.2f} on {env['REPORT_NPROC']} CPUs when the "
      "benchmark started: other processes competed for the CPUs. The in-process rates and CPU µs per "
      "request are divided by CPU time and suffer less than req/s and latency, but still some "
      "(shared caches, frequency). Rerun on a quiet machine for firm figures.")

# --- Part 1 ------------------------------------------------------------------------------------
micro = []
if env["DO_MICRO"] == "1":
    with open(env["MICRO_TSV"]) as f:
        header = f.readline().rstrip("\n").split("\t")
        for line in f:
            micro.append(dict(zip(header, line.rstrip("\n").split("\t"))))
    speed_text = open(env["SPEED_OUT"], errors="replace").read()
    speed = {}
    if m := re.search(r"^\+F2:\d+:2048:([0-9.]+):([0-9.]+)", speed_text, re.M):
        speed["rsa2048"] = float(m.group(2))
    for m in re.finditer(r"^\+F4:\d+:(\d+):([0-9.]+):([0-9.]+)", speed_text, re.M):
        speed["ecdsa" + m.group(1)] = float(m.group(3))
    if m := re.search(r"^\+F6:\d+:\d+:Ed25519:([0-9.]+):([0-9.]+)", speed_text, re.M):
        speed["ed25519"] = float(m.group(2))
    # HMAC: "+BYTES:hmac(sha256):N" (ours) then "+F:<i>:hmac(sha256):<bytes per second>"
    for m in re.finditer(r"^\+BYTES:(hmac\(\w+\)):(\d+)\n(?:.*\n)*?\+F:\d+:\1:([0-9.]+)", speed_text, re.M):
        speed[m.group(1)] = float(m.group(3)) / int(m.group(2))
    speed_key = {"RS256": "rsa2048", "RS384": "rsa2048", "RS512": "rsa2048",
                 "PS256": "rsa2048", "PS384": "rsa2048", "PS512": "rsa2048",
                 "ES256": "ecdsa256", "ES384": "ecdsa384", "ES512": "ecdsa521", "EdDSA": "ed25519",
                 "HS256": "hmac(sha256)", "HS384": "hmac(sha384)", "HS512": "hmac(sha512)"}
    speed_name = {"rsa2048": "rsa2048", "ecdsa256": "ecdsap256", "ecdsa384": "ecdsap384",
                  "ecdsa521": "ecdsap521", "ed25519": "ed25519"}
    r0 = micro[0] if micro else {}
    P("")
    P("## Verifications per second, one thread (bench/auth_bench)")
    P("")
    P(f"Token: {r0.get('token_bytes', '?')} bytes with an RS256 signature, {r0.get('payload_bytes', '?')} bytes "
      f"of claims (iss, sub, aud, azp, exp, iat, nbf, jti, scope, email, name, tenant, roles); "
      f"{env['AUTH_BENCH_SECONDS']} CPU s per algorithm and method, the methods alternating in 5 slices. "
      "Rates are per second of the thread's CPU time, as `openssl speed` counts them.")
    P("")
    P("| alg | gatehouse verif/s | raw EVP verif/s | ratio | `openssl speed` verif/s | ratio "
      "| prepared EVP verif/s | ratio | gatehouse µs | JWT work µs | cache hit ns |")
    P("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in micro:
        g, w, p, hit = (float(r[k]) for k in ("gatehouse_per_s", "raw_evp_per_s", "prepared_evp_per_s", "hit_ns"))
        key = speed_key[r["alg"]]
        s = speed.get(key)
        sname = speed_name.get(key, f"{key}, {r['input_bytes']} B")
        P(f"| {r['alg']} | {fmt(g)} | {fmt(w)} | {ratio(g, w)} | {fmt(s)} ({sname}) | {ratio(g, s)} "
          f"| {fmt(p)} | {ratio(g, p)} | {1e6 / g:.2f} | {1e6 / g - 1e6 / p:.2f} | {hit:.0f} |")
    P("")
    P("- **raw EVP**: the same signing input, key and signature verified with the OpenSSL calls of a "
      "one-off verification, all made per call (EVP_DigestVerifyInit_ex + EVP_DigestVerify; HMAC: "
      "EVP_MAC init, update, final). **prepared EVP**: the per-key part done once, then per call a copy "
      "of that context and EVP_DigestVerify (for HMAC EVP_MAC_CTX_dup): the floor for an EVP-based "
      "verifier, and how gatehouse verifies. **JWT work µs** = gatehouse µs − prepared EVP µs: "
      "base64url, strict JSON parsing of header and payload, claim checks, the Claims object.")
    P("- **`openssl speed`**: rsa2048, ecdsap256/384/521 and ed25519 verify/s (the public-key "
      "operation on a ready digest: no hashing of the signing input, no EVP set-up); HMAC: "
      "`openssl speed -bytes <signing input length> -hmac <digest>`, in MACs per second.")
    P("- **cache hit ns**: try_verify_now() on a token already in the verified-token cache "
      "(SHA-256 of the token, a sharded LRU lookup, the time checks).")
    P("- Target (issue 3 §9): uncached verification within 15% of raw OpenSSL, i.e. ratio ≥ 0.85.")

# --- Part 2 ------------------------------------------------------------------------------------
if env["DO_HTTP"] == "1":
    UNIT_MS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}
    def lat_ms(text):
        m = re.fullmatch(r"([0-9.]+)(us|ms|s|m|h)", text)
        return float(m.group(1)) * UNIT_MS[m.group(2)] if m else None
    def parse_wrk(path):
        r = {"requests": None, "rps": None, "p50": None, "p99": None, "sock": {}, "non2xx": 0}
        try:
            text = open(path, errors="replace").read()
        except OSError:
            return r
        if m := re.search(r"^\s*(\d+) requests in", text, re.M):
            r["requests"] = int(m.group(1))
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
            w.update(config=row["config"], run=int(row["run"]), ticks=ticks, wrk_rc=int(row["wrk_rc"]), alive=alive)
            runs.append(w)
    def med(xs):
        xs = [x for x in xs if x is not None]
        return statistics.median(xs) if xs else None
    def errors_of(rs):
        parts = []
        if n := sum(r["non2xx"] for r in rs):
            parts.append(f"{n} non-2xx")
        sock = {}
        for r in rs:
            for k, v in r["sock"].items():
                sock[k] = sock.get(k, 0) + v
        parts += [f"{v} {k}" for k, v in sock.items()]
        if bad := [str(r["wrk_rc"]) for r in rs if r["wrk_rc"] != 0]:
            parts.append("wrk exit " + ",".join(bad))
        if any(not r["alive"] for r in rs):
            parts.append("process died")
        if any(r["requests"] is None for r in rs):
            parts.append("no wrk result")
        return ", ".join(parts)
    configs = ["nginx", "open", "cached", "uncached"]
    agg = {}
    P("")
    P("## Through the gateway: RS256 bearer tokens, cache on and off, next to nginx without auth")
    P("")
    P(f"One worker each, the same nginx origin (100-byte answer), `wrk -t1 -c{env['CONNS']}`, "
      f"{env['BENCH_SECONDS']} s runs interleaved (nginx, gatehouse no auth, cache on, cache off), "
      f"median of {env['BENCH_REPEATS']} after {env['BENCH_WARMUP']} s of warm-up each. Every request, in every "
      f"configuration, carries the same {env['TOKEN_BYTES']}-byte RS256 token in `Authorization: Bearer` "
      "(without auth it is simply forwarded).")
    P("")
    P("| configuration | req/s | p50 ms | p99 ms | CPU µs/req | errors |")
    P("|---|---:|---:|---:|---:|---|")
    for c in configs:
        label = env[f"REPORT_CFG_{c}"].split("|")[0]
        rs = [r for r in runs if r["config"] == c]
        ok = [r for r in rs if r["alive"]]
        agg[c] = {k: med([r[k] for r in ok]) for k in ("rps", "p50", "p99", "cpu_us")}
        e = errors_of(rs) or ("not measured" if not rs else "")
        errors |= bool(e)
        a = agg[c]
        P(f"| {label} | {fmt(a['rps'])} | {fmt(a['p50'], 3)} | {fmt(a['p99'], 2)} | {fmt(a['cpu_us'], 1)} | {e or 'none'} |")
    P("")
    def diff(a, b):
        x, y = agg[a]["cpu_us"], agg[b]["cpu_us"]
        return None if x is None or y is None else x - y
    def sdiff(v):
        return "n/a" if v is None else f"{v:+.1f}"
    hit, full = diff("cached", "open"), diff("uncached", "open")
    P("Derived (CPU µs per request of the proxy process):")
    P("")
    P(f"- cache hit, vs gatehouse without auth: **{sdiff(hit)} µs/req** (target: under 2 µs); "
      f"vs nginx without auth: {sdiff(diff('cached', 'nginx'))} µs/req")
    P(f"- cache off (full RS256 verification on every request), vs gatehouse without auth: "
      f"**{sdiff(full)} µs/req**; vs nginx without auth: {sdiff(diff('uncached', 'nginx'))} µs/req")
    rs256 = next((r for r in micro if r["alg"] == "RS256"), None)
    if rs256 and full is not None:
        P(f"- for comparison, one RS256 verification in process (part 1): "
          f"{1e6 / float(rs256['gatehouse_per_s']):.1f} µs; a cache hit: {float(rs256['hit_ns']) / 1000:.2f} µs")
    P("- gatehouse without auth vs nginx without auth: "
      f"{sdiff(diff('open', 'nginx'))} µs/req (the proxies themselves; see bench/results.md)")
    P("")
    P("CPU µs/req: user + system CPU time of the proxy process (all threads; for nginx the worker), "
      "read from /proc/PID/stat before and after each run, divided by the requests wrk completed; one "
      "tick is 10 ms. The proxy has its own core, wrk and the origin share the other one: req/s may "
      "be set by either core (bench/run.sh reports which); CPU µs/req is the figure to compare. "
      "Differences of a few tenths of a µs are within the noise of short runs.")
    if int(env["REFUSALS"]):
        P("")
        P(f"**gatehouse refused {env['REFUSALS']} tokens during the load runs** (its log has the reasons).")
        errors = True
    for name, key in (("nginx", "REPORT_DEAD_NGX"), ("gatehouse", "REPORT_DEAD_GH")):
        if env.get(key):
            P("")
            P(f"**{name} FAILED during the benchmark: {env[key]}**")
            errors = True
    P("")
    P("<details><summary>Every measured run</summary>")
    P("")
    P("| configuration | run | requests | req/s | p50 ms | p99 ms | CPU ticks | CPU µs/req | errors |")
    P("|---|---:|---:|---:|---:|---:|---:|---:|---|")
    for r in runs:
        P(f"| {r['config']} | {r['run']} | {fmt(r['requests'])} | {fmt(r['rps'])} | {fmt(r['p50'], 3)} "
          f"| {fmt(r['p99'], 2)} | {r['ticks']} | {fmt(r['cpu_us'], 1)} | {errors_of([r]) or 'none'} |")
    P("")
    P("</details>")
open(sys.argv[1], "w").write("\n".join(out) + "\n")
sys.exit(3 if errors else 0)
PY
publish_report "$report_rc" "$AUTH_RESULTS"
