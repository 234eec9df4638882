#!/usr/bin/env python3
"""A fixed number of HTTP/1.1 keep-alive requests over C connections, in phases a tracer can frame.

bench/run.sh uses it under `strace -c` (BENCH_STRACE=1) to count a proxy's system calls per
request. So that the count covers requests only (no connect, accept, TLS handshake or close):

 1. open C connections (http or https) and send one warm-up request on each, read in full: the
    proxy has accepted them, finished the TLS handshakes and opened its upstream connections;
 2. print "READY <connections>" and wait for SIGUSR1 (at most --hold seconds, then exit 1);
 3. send exactly N requests in total, spread evenly over the connections, one at a time on each
    connection (no pipelining), every response read in full and checked (200, Content-Length);
    print "DONE <ok> <failed> <skipped> <body bytes> <seconds>" (skipped: not sent, --deadline passed);
 4. wait for SIGTERM/SIGINT (at most --hold seconds), then close the connections.

Every phase is bounded in time (--hold, --deadline, per-socket --timeout). Loopback only.
Standard library only.

Usage: count_clients.py --port 18080 --path /1m --conns 16 --requests 200 [--tls]
"""

import argparse
import signal
import socket
import ssl
import sys
import threading
import time

BUF = 256 * 1024


class Conn:
    def __init__(self, sock, request):
        self.sock = sock
        self.request = request
        self.buf = bytearray(BUF)
        self.view = memoryview(self.buf)

    def get(self):
        """One request, the whole response read; returns the body length (raises on any error)."""
        self.sock.sendall(self.request)
        head = b""
        while b"\r\n\r\n" not in head:
            n = self.sock.recv_into(self.buf)
            if n == 0:
                raise ConnectionError("connection closed before the response headers")
            head += bytes(self.view[:n])
        head, _, body = head.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        parts = lines[0].split(b" ", 2)
        if len(parts) < 2 or parts[1] != b"200":
            raise ConnectionError("status line %r" % lines[0][:80])
        length = None
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value.strip())
            elif name == b"connection" and value.strip().lower() == b"close":
                raise ConnectionError("the server closes the connection")
        if length is None:
            raise ConnectionError("response without Content-Length")
        remaining = length - len(body)
        while remaining > 0:
            n = self.sock.recv_into(self.view[:min(remaining, BUF)])
            if n == 0:
                raise ConnectionError("connection closed in the response body")
            remaining -= n
        if remaining < 0:
            raise ConnectionError("more bytes than Content-Length")
        return length


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--path", default="/small")
    ap.add_argument("--conns", type=int, default=10)
    ap.add_argument("--requests", type=int, required=True, help="requests in total, after the warm-up")
    ap.add_argument("--tls", action="store_true", help="https (certificate not verified: loopback test)")
    ap.add_argument("--hold", type=float, default=60.0, help="max seconds to wait for each signal (default 60)")
    ap.add_argument("--deadline", type=float, default=120.0, help="max seconds for the N requests (default 120)")
    ap.add_argument("--timeout", type=float, default=10.0, help="per-socket I/O timeout (default 10 s)")
    args = ap.parse_args()

    if not args.host.startswith("127.") and args.host not in ("localhost", "::1"):
        sys.exit("count_clients.py: refusing a non-loopback host %r" % args.host)
    if args.conns < 1 or args.requests < 1:
        sys.exit("count_clients.py: --conns and --requests must be >= 1")

    # Signals are taken synchronously by the main thread (sigwait); the workers inherit the mask.
    sigs = {signal.SIGUSR1, signal.SIGTERM, signal.SIGINT}
    signal.pthread_sigmask(signal.SIG_BLOCK, sigs)

    ctx = None
    if args.tls:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    request = ("GET %s HTTP/1.1\r\nHost: %s:%d\r\nUser-Agent: count_clients.py\r\n\r\n"
               % (args.path, args.host, args.port)).encode()

    conns = []
    for _ in range(args.conns):
        s = socket.create_connection((args.host, args.port), timeout=args.timeout)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if ctx is not None:
            s = ctx.wrap_socket(s, server_hostname="localhost")
        c = Conn(s, request)
        c.get()   # warm-up: connection, handshake and upstream connection set up before READY
        conns.append(c)
    print("READY %d" % len(conns), flush=True)

    if signal.sigtimedwait(sigs, args.hold) is None:
        sys.exit("count_clients.py: no SIGUSR1 within --hold seconds")

    share = [args.requests // len(conns) + (1 if i < args.requests % len(conns) else 0)
             for i in range(len(conns))]
    results = [[0, 0, 0, 0] for _ in conns]   # ok, failed, bytes, skipped
    deadline = time.monotonic() + args.deadline

    def worker(i):
        r = results[i]
        for _ in range(share[i]):
            if time.monotonic() > deadline:
                r[3] = share[i] - r[0]
                return
            try:
                r[2] += conns[i].get()
                r[0] += 1
            except (OSError, ValueError) as e:
                print("count_clients.py: %s: %s" % (type(e).__name__, e), file=sys.stderr)
                r[1] += share[i] - r[0]   # the connection is unusable: the rest of its share fails
                return

    t0 = time.monotonic()
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(conns))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    secs = time.monotonic() - t0
    ok = sum(r[0] for r in results)
    failed = sum(r[1] for r in results)
    skipped = sum(r[3] for r in results)
    print("DONE %d %d %d %d %.3f" % (ok, failed, skipped, sum(r[2] for r in results), secs), flush=True)

    signal.sigtimedwait({signal.SIGTERM, signal.SIGINT}, args.hold)
    for c in conns:
        c.sock.close()


if __name__ == "__main__":
    main()
