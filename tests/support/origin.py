#!/usr/bin/env python3
"""A small HTTP origin for load-balancing tests, run as a separate process.

Answers every GET with its name (keep-alive, HTTP/1.1); --delay-ms makes every answer slow;
--status answers that status instead of 200. Prints its port on stdout once it listens, and exits
when its stdin closes (so a test that dies leaves no process behind).
"""
import argparse
import http.server
import os
import sys
import threading
import time


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--name", default="origin")
    p.add_argument("--delay-ms", type=int, default=0)
    p.add_argument("--status", type=int, default=200)
    a = p.parse_args()
    body = a.name.encode()

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self):
            if a.delay_ms and self.path != "/healthz":
                time.sleep(a.delay_ms / 1000.0)
            status = 200 if self.path == "/healthz" else a.status
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    http.server.ThreadingHTTPServer.daemon_threads = True
    server = http.server.ThreadingHTTPServer(("127.0.0.1", a.port), Handler)
    print(server.server_address[1], flush=True)

    def watch_stdin():
        sys.stdin.read()
        os._exit(0)

    threading.Thread(target=watch_stdin, daemon=True).start()
    server.serve_forever()


if __name__ == "__main__":
    main()
