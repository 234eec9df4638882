#!/usr/bin/env bash
# The gatehouse program: SIGHUP reloads the configuration file (a refused file is logged with its
# JSON path and changes nothing), and a binary upgrade on the same port loses no request: a second
# instance starts on the port (SO_REUSEPORT), then the first is stopped and drains.
set -u
bin=$1
fail=0
tmp=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null; done
  rm -rf "$tmp"
}
trap cleanup EXIT
ok() { echo "ok: $*"; }
bad() { echo "FAIL: $*"; fail=1; }

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
config() {  # config FILE WORKERS BODY
  cat >"$1.tmp" <<JSON
{ "workers": $2, "drain_timeout_ms": 5000,
  "listeners": [ { "address": "127.0.0.1", "port": $port } ],
  "routes": [ { "path": "/", "respond": { "status": 200, "body": "$3" } } ] }
JSON
  mv "$1.tmp" "$1"
}
wait_for() {  # wait_for FILE PATTERN: up to 5 s
  for _ in $(seq 100); do grep -q -- "$2" "$1" && return 0; sleep 0.05; done
  return 1
}
answer() { curl -s --noproxy '*' --max-time 5 "http://127.0.0.1:$port/"; }

# The first instance runs one worker on its main thread; SIGHUP reloads on a thread of its own.
config "$tmp/gateway.json" 1 first
"$bin" --config "$tmp/gateway.json" 2>"$tmp/first.err" &
first=$!
pids+=("$first")
wait_for "$tmp/first.err" "listening on" || { cat "$tmp/first.err"; echo "FAIL: the first instance did not start"; exit 1; }
[ "$(answer)" = first ] && ok "first instance answers" || bad "first instance answered '$(answer)'"

# An invalid file: refused with the JSON path of the problem, the gateway goes on as it was.
echo '{"listeners": [{"port": '"$port"'}], "routes": [{"path": "/", "upstream": "nope"}]}' >"$tmp/gateway.json"
kill -HUP "$first"
if wait_for "$tmp/first.err" "reload refused" && grep "reload refused" "$tmp/first.err" | grep -q "/routes/0/upstream"; then
  ok "SIGHUP with an invalid file: refused, logged with its JSON path"
else
  bad "no refusal with the path in: $(cat "$tmp/first.err")"
fi
[ "$(answer)" = first ] && ok "still answering after the refused reload" || bad "answered '$(answer)' after a refused reload"

# A valid file: in force once the reload is logged.
config "$tmp/gateway.json" 1 reloaded
kill -HUP "$first"
wait_for "$tmp/first.err" "configuration reloaded" || bad "no reload logged: $(cat "$tmp/first.err")"
[ "$(answer)" = reloaded ] && ok "SIGHUP with a valid file: the new answer" || bad "answered '$(answer)' after the reload"

# SIGUSR1 reopens the security-event file of the configuration in force: here one that a reload
# brought (the start configuration has none), rotated away as logrotate would.
cat >"$tmp/gateway.json.tmp" <<JSON
{ "workers": 1, "drain_timeout_ms": 5000,
  "listeners": [ { "address": "127.0.0.1", "port": $port } ],
  "security_events": { "sinks": [ { "type": "file", "path": "$tmp/events.json" } ] },
  "routes": [ { "path": "/", "respond": { "status": 200, "body": "reloaded" } } ] }
JSON
mv "$tmp/gateway.json.tmp" "$tmp/gateway.json"
kill -HUP "$first"
wait_for "$tmp/events.json" "config-reloaded" || bad "no reload event in the new events file"
mv "$tmp/events.json" "$tmp/events.json.1"
kill -USR1 "$first"
sleep 0.3
smuggle() {
  python3 - "$port" <<'PY'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
s.sendall(b"GET / HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n")
s.recv(4096)
PY
}
smuggle
if wait_for "$tmp/events.json" "http-request-smuggling-suspected"; then
  ok "SIGUSR1 after a reload: the reloaded configuration's event file is reopened"
else
  bad "no event in the reopened file (rotated one: $(cat "$tmp/events.json.1" 2>/dev/null))"
fi
kill -0 "$first" 2>/dev/null && ok "still running after SIGUSR1" || bad "SIGUSR1 ended the process"

# The upgrade, under a client that opens a new connection per request all along.
cat >"$tmp/client.py" <<'PY'
import os, socket, sys
port, stop = int(sys.argv[1]), sys.argv[2]
ok = failed = 0
seen, errors = {}, []
while not os.path.exists(stop):
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        s.sendall(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        s.close()
        head, _, body = data.partition(b"\r\n\r\n")
        if head.startswith(b"HTTP/1.1 200"):
            ok += 1
            seen[body] = seen.get(body, 0) + 1
            if ok == 1:
                open(stop + ".started", "w").close()
        else:
            failed += 1
            errors.append(repr(data[:80]))
    except Exception as e:
        failed += 1
        errors.append(repr(e))
print("ok=%d failed=%d reloaded=%d second=%d" % (ok, failed, seen.get(b"reloaded", 0), seen.get(b"second", 0)))
for e in errors[:5]:
    print("error:", e)
PY
python3 "$tmp/client.py" "$port" "$tmp/stop" >"$tmp/client.out" &
client=$!
pids+=("$client")
wait_started() { for _ in $(seq 200); do [ -e "$tmp/stop.started" ] && return 0; sleep 0.05; done; return 1; }
wait_started || bad "the client did not get an answer within 10 s"
sleep 0.3  # the first instance alone
config "$tmp/second.json" 2 second
"$bin" --config "$tmp/second.json" 2>"$tmp/second.err" &
second=$!
pids+=("$second")
wait_for "$tmp/second.err" "listening on" || bad "the second instance did not start: $(cat "$tmp/second.err")"
sleep 0.5  # both instances serve now
kill -TERM "$first"
for _ in $(seq 100); do kill -0 "$first" 2>/dev/null || break; sleep 0.05; done
if kill -0 "$first" 2>/dev/null; then bad "the first instance still runs 5 s after SIGTERM"
else wait "$first"; rc=$?; [ "$rc" -eq 0 ] && ok "the first instance drained and exited 0" || bad "the first instance exited $rc"; fi
sleep 0.5  # the second instance alone
touch "$tmp/stop"
wait "$client"
cat "$tmp/client.out"
read -r counts <"$tmp/client.out"
case "$counts" in
  *" failed=0 "*) ok "no failed request across the upgrade ($counts)" ;;
  *) bad "requests failed across the upgrade: $(cat "$tmp/client.out")" ;;
esac
case "$counts" in
  *" reloaded=0 "* | *" second=0") bad "both instances should have answered: $counts" ;;
  *) ok "both instances answered" ;;
esac
[ "$(answer)" = second ] && ok "the second instance serves the port" || bad "answered '$(answer)' after the upgrade"
kill -TERM "$second"
wait "$second" || bad "the second instance exited $?"
exit $fail
