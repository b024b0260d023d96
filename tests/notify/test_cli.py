"""`winslow notify` against a real `winslow up`, whose own dispatcher thread sends: a
webhook subscription, its secret printed once, a test notification and a gate's, signed."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from pathlib import Path

import pytest

from tests.fixtures.server import Server
from tests.notify.conftest import Receiver

pytestmark = pytest.mark.slow

GATED = """
name: gated
stages:
  - name: prepare
    command: ["sh", "-c", "echo ready"]
  - name: review
    gate: true
    command: ["sh", "-c", "echo reviewed"]
"""


def test_notify_from_the_cli_through_the_servers_dispatcher(
    winslow_server: Server, receiver: Receiver, tmp_path: Path
) -> None:
    server = winslow_server
    (tmp_path / "p.yaml").write_text(GATED)
    server.cli("pipeline", "apply", str(tmp_path / "p.yaml"))
    server.cli("project", "create", "ulm-0603", "-p", "gated")
    added = server.cli("notify", "add", "hook", "--webhook", receiver.url, "-p", "ulm-0603")
    secret = added.stdout.strip().splitlines()[-1]
    assert secret.startswith("whsec_")
    assert "hook" in server.cli("notify", "list").stdout
    assert secret not in server.cli("notify", "list", "--json").stdout

    tested = server.cli("notify", "test", "hook")
    assert "delivered" in tested.stdout
    server.cli("project", "start", "ulm-0603")
    server.wait_for("ulm-0603", {"awaiting_input"})
    deadline = time.monotonic() + 60
    while len(receiver.received) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)

    test, gate = receiver.received
    assert test.json["event"] == "test" and gate.json["event"] == "awaiting_input"
    for hook in (test, gate):
        expected = hmac.new(secret.encode(), hook.body, hashlib.sha256).hexdigest()
        assert hook.headers["X-Winslow-Signature"] == f"sha256={expected}"
    shown = json.loads(server.cli("notify", "deliveries", "--json").stdout)["data"]
    assert [(d["event"], d["status"]) for d in shown] == [
        ("awaiting_input", "delivered"),
        ("test", "delivered"),
    ]

    removed = server.cli("notify", "remove", "hook")
    assert "removed" in removed.stdout
    missing = server.cli("notify", "test", "hook", check=False)
    assert missing.returncode == 1 and "winslow notify list" in missing.stderr
