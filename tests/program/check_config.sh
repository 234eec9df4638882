#!/usr/bin/env bash
# The gatehouse program: --check accepts the example configuration and refuses broken ones with
# exit code 2 and the JSON path of the problem.
set -u
bin=$1
src=$2
fail=0
expect() {  # expect CODE PATTERN -- args...
  local code=$1 pattern=$2; shift 3
  local out rc
  out=$("$bin" "$@" 2>&1); rc=$?
  if [ "$rc" -ne "$code" ] || ! grep -q -- "$pattern" <<<"$out"; then
    echo "FAIL: gatehouse $* -> exit $rc (want $code), output: $out"; fail=1
  else
    echo "ok: gatehouse $* -> exit $rc"
  fi
}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
expect 0 "configuration is valid" -- --check "$src/examples/gatehouse/gateway.example.json"
echo '{"listeners":[{"port":8080}],"routes":[{"path":"/","upstream":"nope"}]}' >"$tmp/unknown.json"
expect 2 '/routes/0/upstream' -- --check "$tmp/unknown.json"
echo '{"listeners":[{"port":"80"}],"routes":[]}' >"$tmp/type.json"
expect 2 '/listeners/0/port' -- --check "$tmp/type.json"
echo '{"listeners":[{"port":8080}],' >"$tmp/syntax.json"
expect 2 'invalid configuration' -- --check "$tmp/syntax.json"
expect 2 'cannot read' -- --check "$tmp/missing.json"
expect 64 'usage' -- --bogus
# --config with a bad file must not start anything either.
expect 2 '/routes/0/upstream' -- --config "$tmp/unknown.json"

# A real run: start on a free port, answer, then drain and exit 0 on SIGTERM.
cat >"$tmp/run.json" <<'JSON'
{ "workers": 1, "listeners": [ { "address": "127.0.0.1", "port": 0 } ],
  "routes": [ { "path": "/healthz", "prefix": false, "respond": { "status": 200, "body": "alive" } } ] }
JSON
"$bin" --config "$tmp/run.json" 2>"$tmp/run.err" &
pid=$!
port=""
for _ in $(seq 50); do
  port=$(sed -n 's/.*listening on 127.0.0.1:\([0-9]*\).*/\1/p' "$tmp/run.err" | head -1)
  [ -n "$port" ] && break
  sleep 0.1
done
body=$(curl -s --max-time 5 "http://127.0.0.1:$port/healthz" || true)
if [ "$body" != "alive" ]; then echo "FAIL: running gateway answered '$body'"; fail=1; else echo "ok: running gateway answers"; fi
kill -TERM "$pid"
for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$pid" 2>/dev/null; then echo "FAIL: still running 5 s after SIGTERM"; kill -KILL "$pid"; fail=1
else wait "$pid"; rc=$?; if [ "$rc" -ne 0 ]; then echo "FAIL: exit $rc after SIGTERM"; fail=1; else echo "ok: SIGTERM drains and exits 0"; fi; fi

# The admin API from the file: readiness, the gateway's Prometheus metrics, the configuration with
# its secrets redacted, and POST
# /drain, which drains and exits 0 as SIGTERM does (one worker on the main thread, and two).
for workers in 1 2; do
  cat >"$tmp/admin.json" <<JSON
{ "workers": $workers, "listeners": [ { "address": "127.0.0.1", "port": 0 } ],
  "routes": [ { "path": "/healthz", "prefix": false,
                "respond": { "status": 200, "body": "alive", "headers": { "x-api-key": "do-not-show" } } } ],
  "admin": { "port": 0 } }
JSON
  "$bin" --config "$tmp/admin.json" 2>"$tmp/admin.err" &
  pid=$!
  admin=""
  for _ in $(seq 50); do
    admin=$(sed -n 's/.*admin API on 127.0.0.1:\([0-9]*\).*/\1/p' "$tmp/admin.err" | head -1)
    [ -n "$admin" ] && break
    sleep 0.1
  done
  ready=$(curl -s --max-time 5 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$admin/readyz" || true)
  config=$(curl -s --max-time 5 "http://127.0.0.1:$admin/config" || true)
  metrics=$(curl -s --max-time 5 "http://127.0.0.1:$admin/metrics" || true)
  drain=$(curl -s --max-time 5 -o /dev/null -w '%{http_code}' -X POST "http://127.0.0.1:$admin/drain" || true)
  if [ "$ready" != 200 ] || [ "$drain" != 202 ] || ! grep -q '\[redacted\]' <<<"$config" || grep -q 'do-not-show' <<<"$config" \
     || ! grep -q 'gatehouse_downstream_connections_active' <<<"$metrics"; then
    echo "FAIL: admin API (workers $workers): readyz $ready, drain $drain, config: $config, metrics: $metrics"; fail=1
  else
    echo "ok: admin API answers (workers $workers)"
  fi
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then echo "FAIL: still running 5 s after POST /drain"; kill -KILL "$pid"; fail=1
  else wait "$pid"; rc=$?; if [ "$rc" -ne 0 ]; then echo "FAIL: exit $rc after POST /drain"; fail=1; else echo "ok: POST /drain drains and exits 0 (workers $workers)"; fi; fi
done
exit $fail
