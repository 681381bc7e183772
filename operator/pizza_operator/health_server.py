"""`/healthz` for the kubelet's probes: 200 with the role when healthy, 503 with the reasons."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from pizza_operator.health import Health


def serve(health: Health, port: int) -> ThreadingHTTPServer:
    """Answer GET /healthz on 0.0.0.0:`port` from a daemon thread."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.split("?")[0] != "/healthz":
                self._send(404, {"error": "not found"})
                return
            ok, reasons = health.check()
            self._send(200 if ok else 503, {"ok": ok, "role": health.role, "reasons": reasons})

        def _send(self, code: int, body: dict[str, object]) -> None:
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *_: object) -> None:  # probes every few seconds: not worth a line
            return

    server = ThreadingHTTPServer(("0.0.0.0", port), Handler)  # the kubelet probes the pod IP
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="healthz", daemon=True).start()
    return server
