"""A stand-in for a service the stand-in's docker cannot run (PostgreSQL, MinIO, Winslow).

Run by the deploy tests' ``raw_exec`` override: listens on the port that the environment
variable named by ``argv[1]`` holds (``NOMAD_PORT_db``), answers every HTTP request with
``FAKE_STATUS`` (200 unless set), and writes its environment to
``$NOMAD_ALLOC_DIR/env.json`` so a test can see what the job's templates rendered.
"""

from __future__ import annotations

import json
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        status = int(os.environ.get("FAKE_STATUS", "200"))
        body = json.dumps({"status": "ok" if status == 200 else "down"}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        sys.stderr.write(f"{self.command} {self.path}\n")


def main() -> None:
    port = int(os.environ[sys.argv[1]])
    alloc_dir = Path(os.environ["NOMAD_ALLOC_DIR"])
    (alloc_dir / "env.json").write_text(json.dumps(dict(os.environ)))
    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()


if __name__ == "__main__":
    main()
