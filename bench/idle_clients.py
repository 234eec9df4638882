#!/usr/bin/env python3
"""Open N idle HTTP/1.1 keep-alive connections to a local server and hold them open.

Each connection sends one small request (GET /small by default), reads the complete response
(so the server has taken the connection past its first request and parked it as an idle
keep-alive connection), then stays open without sending anything.

Once all connections are idle the script prints one line to stdout:

    READY <opened> <failed>

and holds the connections until it receives SIGTERM/SIGINT or --hold seconds have passed
(default 60: the script always stops by itself). Standard library only.

Usage: idle_clients.py --port 18080 [--host 127.0.0.1] [--count 2000] [--path /small] [--hold 60]
"""

import argparse
import resource
import signal
import socket
import sys
import time


def raise_fd_limit(needed):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = needed + 64
    if soft < want:
        new_soft = want if hard == resource.RLIM_INFINITY else min(want, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (new_soft, hard))
        soft = new_soft
    return soft


def read_response(sock):
    """Reads one HTTP/1.1 response (Content-Length or chunked); returns (status, keep_alive)."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("connection closed before the response headers")
        buf += chunk
    head, _, body = buf.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    parts = lines[0].split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1."):
        raise ConnectionError("bad status line %r" % lines[0][:80])
    status = int(parts[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        headers[name.strip().lower()] = value.strip().lower()
    keep_alive = headers.get(b"connection") != b"close"
    if b"content-length" in headers:
        remaining = int(headers[b"content-length"]) - len(body)
        while remaining > 0:
            chunk = sock.recv(min(remaining, 65536))
            if not chunk:
                raise ConnectionError("connection closed in the response body")
            remaining -= len(chunk)
    elif b"chunked" in headers.get(b"transfer-encoding", b""):
        # Good enough for small test bodies: read until the terminating zero-length chunk.
        while not (body.endswith(b"\r\n0\r\n\r\n") or body == b"0\r\n\r\n"):
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionError("connection closed in a chunked body")
            body += chunk
    else:
        raise ConnectionError("response without Content-Length or chunked encoding")
    return status, keep_alive


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--count", type=int, default=2000)
    ap.add_argument("--path", default="/small")
    ap.add_argument("--hold", type=float, default=60.0, help="seconds to hold the connections (default 60)")
    ap.add_argument("--timeout", type=float, default=5.0, help="per-connection I/O timeout (default 5 s)")
    args = ap.parse_args()

    if not args.host.startswith("127.") and args.host not in ("localhost", "::1"):
        sys.exit("idle_clients.py: refusing a non-loopback host %r" % args.host)

    raise_fd_limit(args.count)
    stop = {"now": False}

    def on_signal(signum, frame):
        stop["now"] = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    request = ("GET %s HTTP/1.1\r\nHost: %s:%d\r\nUser-Agent: idle_clients.py\r\n\r\n"
               % (args.path, args.host, args.port)).encode()
    socks = []
    failed = 0
    errors = {}
    deadline = time.monotonic() + args.hold
    for _ in range(args.count):
        if stop["now"] or time.monotonic() > deadline:
            break
        s = None
        try:
            s = socket.create_connection((args.host, args.port), timeout=args.timeout)
            s.sendall(request)
            status, keep_alive = read_response(s)
            if status != 200 or not keep_alive:
                raise ConnectionError("status %d, keep-alive %s" % (status, keep_alive))
            socks.append(s)
        except (OSError, ValueError) as e:
            failed += 1
            key = type(e).__name__ + ": " + str(e)[:80]
            errors[key] = errors.get(key, 0) + 1
            if s is not None:
                s.close()

    for key, n in sorted(errors.items(), key=lambda kv: -kv[1]):
        print("idle_clients.py: %d x %s" % (n, key), file=sys.stderr)
    print("READY %d %d" % (len(socks), failed), flush=True)

    # Hold the connections idle; check now and then that the server has not closed them.
    while not stop["now"] and time.monotonic() < deadline:
        time.sleep(0.2)

    closed_by_server = 0
    for s in socks:
        try:
            s.setblocking(False)
            if s.recv(1) == b"":
                closed_by_server += 1
        except BlockingIOError:
            pass
        except OSError:
            closed_by_server += 1
        s.close()
    print("CLOSED %d %d" % (len(socks), closed_by_server), flush=True)


if __name__ == "__main__":
    main()
