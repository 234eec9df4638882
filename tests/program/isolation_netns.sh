#!/usr/bin/env bash
# Service isolation, shown with network namespaces this test creates:
#
#   ext (client)  10.77.1.2 --veth-- 10.77.1.1  gw (gatehouse)  10.77.2.1 --veth-- 10.77.2.2  svc
#
# The services (billing, orders) listen only on 10.77.2.2 in "svc". "gw" does not forward packets:
# the gateway process is the only bridge. A client outside reaches a service only through a public
# route; the internal listener (mTLS) refuses outside addresses at accept; east-west calls between
# the services go through the gateway and are authorized by the caller's SPIFFE ID.
# Exit 77 (skipped) when not root or when the machine does not allow network namespaces.
set -u
bin=$1
if [ "$(id -u)" != 0 ]; then echo "SKIP: creating network namespaces needs root"; exit 77; fi
if ! command -v ip >/dev/null; then echo "SKIP: the ip command (iproute2) is missing"; exit 77; fi

tag=gh$$
ext=$tag-ext gw=$tag-gw svc=$tag-svc
tmp=$(mktemp -d)
pids=()
fail=0
cleanup() {
  for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null; done
  wait 2>/dev/null
  for ns in "$ext" "$gw" "$svc"; do ip netns del "$ns" 2>/dev/null; done
  rm -rf "$tmp"
}
trap cleanup EXIT INT TERM
ok() { echo "ok: $*"; }
bad() { echo "FAIL: $*"; fail=1; }

if ! ip netns add "$ext" 2>"$tmp/netns.err"; then
  echo "SKIP: network namespaces are not allowed here: $(cat "$tmp/netns.err")"
  exit 77
fi
set -e
ip netns add "$gw"
ip netns add "$svc"
# Both veth pairs are made inside the namespaces: no name is ever taken in the host's namespace.
ip -n "$gw" link add ge0 type veth peer name ce0 netns "$ext"
ip -n "$gw" link add gi0 type veth peer name si0 netns "$svc"
ip -n "$ext" addr add 10.77.1.2/24 dev ce0
ip -n "$gw" addr add 10.77.1.1/24 dev ge0
ip -n "$gw" addr add 10.77.2.1/24 dev gi0
ip -n "$svc" addr add 10.77.2.2/24 dev si0
for ns in "$ext" "$gw" "$svc"; do ip -n "$ns" link set lo up; done
ip -n "$ext" link set ce0 up
ip -n "$gw" link set ge0 up
ip -n "$gw" link set gi0 up
ip -n "$svc" link set si0 up
# Routes both ways through the gateway host, so that only its refusal to forward keeps them apart.
ip -n "$ext" route add 10.77.2.0/24 via 10.77.1.1
ip -n "$svc" route add 10.77.1.0/24 via 10.77.2.1
ip netns exec "$gw" sysctl -q -w net.ipv4.ip_forward=0
set +e

# A small PKI: the internal CA, the gateway's internal certificate, and SPIFFE X.509-SVIDs.
pki=$tmp/pki
mkdir "$pki"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj "/O=corp/CN=corp internal CA" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
  -keyout "$pki/ca.key" -out "$pki/ca.crt" 2>/dev/null
issue() {  # issue NAME SAN EKU
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/O=corp/CN=$1" \
    -keyout "$pki/$1.key" -out "$pki/$1.csr" 2>/dev/null
  printf 'subjectAltName=%s\nextendedKeyUsage=%s\nbasicConstraints=critical,CA:FALSE\n' "$2" "$3" >"$pki/$1.ext"
  openssl x509 -req -in "$pki/$1.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -CAcreateserial -days 2 \
    -extfile "$pki/$1.ext" -out "$pki/$1.crt" 2>/dev/null
}
issue gateway "IP:10.77.2.1" serverAuth
issue billing "URI:spiffe://corp/ns/billing/sa/api" clientAuth
issue orders "URI:spiffe://corp/ns/orders/sa/api" clientAuth
issue web "URI:spiffe://corp/ns/web/sa/frontend" clientAuth
[ -s "$pki/web.crt" ] || { echo "FAIL: could not make the test certificates"; exit 1; }

# The services: each answers with its name, the path and the caller identity the gateway sent.
cat >"$tmp/services.py" <<'PY'
import http.server, sys, threading
class Echo(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = ("%s path=%s caller=%s" % (self.server.name, self.path,
                self.headers.get("x-client-spiffe-id", "-"))).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
servers = []
for name, port in (("billing", 9001), ("orders", 9002)):
    s = http.server.ThreadingHTTPServer(("10.77.2.2", port), Echo)
    s.name = name
    servers.append(s)
    threading.Thread(target=s.serve_forever, daemon=True).start()
print("ready", flush=True)
threading.Event().wait()
PY
ip netns exec "$svc" python3 "$tmp/services.py" >"$tmp/services.out" 2>&1 &
pids+=($!)

cat >"$tmp/gateway.json" <<JSON
{ "workers": 1,
  "listeners": [
    { "name": "external", "address": "10.77.1.1", "port": 8080 },
    { "name": "internal", "address": "10.77.2.1", "port": 8443,
      "ip_filter": { "name": "internal-only", "allow": ["10.77.2.0/24"] },
      "tls": { "certificates": [ { "cert": "$pki/gateway.crt", "key": "$pki/gateway.key" } ],
               "client_ca": "$pki/ca.crt", "max_chain_depth": 1 } } ],
  "upstreams": {
    "billing": { "endpoints": ["10.77.2.2:9001"] },
    "orders": { "endpoints": ["10.77.2.2:9002"] } },
  "middleware": [ { "name": "client_identity_headers" }, { "name": "response_hardening" } ],
  "routes": [
    { "name": "public-orders", "path": "/api/orders", "rewrite_prefix": "/orders", "upstream": "orders",
      "listeners": ["external"] },
    { "name": "orders-from-billing", "path": "/internal/orders", "upstream": "orders", "listeners": ["internal"],
      "middleware": [ { "name": "authorize", "options": { "spiffe_ids": ["spiffe://corp/ns/billing/sa/api"] } } ] },
    { "name": "billing-from-orders", "path": "/internal/billing", "upstream": "billing", "listeners": ["internal"],
      "middleware": [ { "name": "authorize", "options": { "spiffe_ids": ["spiffe://corp/ns/orders/*"] } } ] } ] }
JSON
ip netns exec "$gw" "$bin" --config "$tmp/gateway.json" >"$tmp/gateway.out" 2>"$tmp/gateway.err" &
pids+=($!)

for _ in $(seq 100); do
  grep -q ready "$tmp/services.out" && [ "$(grep -c "listening on" "$tmp/gateway.err")" -ge 2 ] && break
  sleep 0.05
done
grep -q ready "$tmp/services.out" || { cat "$tmp/services.out"; echo "FAIL: the services did not start"; exit 1; }
[ "$(grep -c "listening on" "$tmp/gateway.err")" -ge 2 ] || { cat "$tmp/gateway.err"; echo "FAIL: the gateway did not start"; exit 1; }

in_ns() { local ns=$1; shift; ip netns exec "$ns" "$@"; }
get() {  # get NS URL [curl args...]: prints "BODY STATUS", or "unreachable"
  local ns=$1 url=$2; shift 2
  in_ns "$ns" curl -s --noproxy '*' --max-time 3 -w ' %{http_code}' "$@" "$url" || echo "unreachable"
}
mtls() {  # mtls NS NAME PATH [curl args...]: an mTLS call to the internal listener as NAME
  local ns=$1 name=$2 path=$3
  shift 3
  get "$ns" "https://10.77.2.1:8443$path" --cacert "$pki/ca.crt" --cert "$pki/$name.crt" --key "$pki/$name.key" "$@"
}
expect() {  # expect WHAT ACTUAL PATTERN
  if [[ "$2" == $3 ]]; then ok "$1"; else bad "$1: got '$2'"; fi
}

# Outside: only the gateway's public route leads to a service.
expect "outside -> public route -> orders" "$(get "$ext" http://10.77.1.1:8080/api/orders/7)" \
  "orders path=/orders/7 caller=- 200"
# Routes exist both ways, but the gateway host forwards nothing: the packets are dropped.
expect "outside -> orders service directly: no path" \
  "$(get "$ext" http://10.77.2.2:9002/orders/7 --max-time 1)" "*unreachable*"
expect "outside -> billing service directly: no path" "$(get "$ext" http://10.77.2.2:9001/ --max-time 1)" "*unreachable*"
expect "outside -> an internal route on the public listener: 404" \
  "$(get "$ext" http://10.77.1.1:8080/internal/orders/1)" "* 404"
# Even with a stolen service certificate, the internal listener closes outside connections at accept.
expect "outside -> internal listener with billing's certificate: closed" \
  "$(mtls "$ext" billing /internal/orders/1)" "*unreachable*"

# East-west, through the gateway, authorized by SPIFFE ID.
expect "billing -> gateway -> orders (spiffe://corp/ns/billing/sa/api)" "$(mtls "$svc" billing /internal/orders/1)" \
  "orders path=/internal/orders/1 caller=spiffe://corp/ns/billing/sa/api 200"
expect "orders -> gateway -> billing (spiffe://corp/ns/orders/*)" "$(mtls "$svc" orders /internal/billing/invoices)" \
  "billing path=/internal/billing/invoices caller=spiffe://corp/ns/orders/sa/api 200"
expect "orders -> gateway -> orders: wrong identity, 403" "$(mtls "$svc" orders /internal/orders/1)" "* 403"
expect "web -> gateway -> billing: wrong identity, 403" "$(mtls "$svc" web /internal/billing/x)" "* 403"
expect "inside without a certificate: refused in the handshake" \
  "$(get "$svc" https://10.77.2.1:8443/internal/orders/1 --cacert "$pki/ca.crt")" "*unreachable*"
# A forged identity header from a service is replaced by the verified one.
expect "a forged x-client-spiffe-id is not forwarded" \
  "$(mtls "$svc" billing /internal/orders/2 -H 'x-client-spiffe-id: spiffe://corp/ns/admin/sa/root')" \
  "*caller=spiffe://corp/ns/billing/sa/api 200"

exit $fail
