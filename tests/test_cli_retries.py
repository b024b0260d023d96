"""The CLI repeats idempotent API calls while the server does not answer, and only those.

The loop itself runs against an ``httpx.MockTransport`` (503 then 200, a refused
connection); the reason for it runs against a real ``winslow up`` that is killed after an
upload's last part and started again while the CLI waits to complete it, and one that is
stopped and started on the same port while ``winslow resources ls`` keeps asking.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.fixtures.server import BIN, Server
from tests.fixtures.winslow import Harness
from winslow.cli.client import ApiClient, CommandError
from winslow.cli.transfer import upload_file
from winslow.settings import ClientSettings


def mock_client(
    answers: list[int | Exception], retry_seconds: float = 60.0
) -> tuple[ApiClient, list[str], list[str], list[float]]:
    """A client whose server answers ``answers`` in turn (a status or a raised error);
    returns it with the requests it sent, the notes it printed and the pauses it took."""
    sent: list[str] = []
    notes: list[str] = []
    pauses: list[float] = []

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(f"{request.method} {request.url.path}")
        what = answers.pop(0)
        if isinstance(what, Exception):
            raise what
        return httpx.Response(what, json={"detail": f"answer {what}"})

    settings = ClientSettings(
        addr="http://winslow.test", token="t", cli_retry_seconds=retry_seconds
    )
    api = ApiClient(
        settings, transport=httpx.MockTransport(answer), sleep=pauses.append, note=notes.append
    )
    return api, sent, notes, pauses


def test_a_get_is_repeated_through_503s_and_refused_connections() -> None:
    refused = httpx.ConnectError("connection refused")
    api, sent, notes, pauses = mock_client([503, refused, 502, 200])
    assert api.get("/projects") == {"detail": "answer 200"}
    assert sent == ["GET /api/v1/projects"] * 4
    assert len(notes) == 3 and notes[0].startswith("server not answering, retrying in ")
    assert all(note.endswith(" s...") for note in notes)
    # Backoff 1, 2, 4 s with jitter of a quarter either way.
    for pause, step in zip(pauses, (1.0, 2.0, 4.0), strict=True):
        assert step * 0.75 <= pause <= step * 1.25


def test_a_post_that_is_not_idempotent_is_sent_once() -> None:
    api, sent, notes, _ = mock_client([503, 200])
    with pytest.raises(CommandError) as failed:
        api.post("/projects", {"name": "p"})
    assert failed.value.status_code == 503
    assert sent == ["POST /api/v1/projects"] and notes == []

    refused = httpx.ConnectError("connection refused")
    api, sent, notes, _ = mock_client([refused, 200])
    with pytest.raises(CommandError, match="No Winslow server answers"):
        api.post("/projects/p/start")
    assert sent == ["POST /api/v1/projects/p/start"] and notes == []


def test_a_post_marked_idempotent_is_repeated() -> None:
    lost = httpx.RemoteProtocolError("server disconnected without sending a response")
    api, sent, notes, _ = mock_client([lost, 504, 200])
    assert api.post("/resources/uploads/u/complete", {}, idempotent=True) == {
        "detail": "answer 200"
    }
    assert len(sent) == 3 and len(notes) == 2


def test_retries_stop_when_the_time_is_spent_and_say_why() -> None:
    api, sent, notes, pauses = mock_client([503] * 50, retry_seconds=10)
    with pytest.raises(CommandError, match="answer 503"):
        api.get("/projects")
    assert 4 <= len(sent) <= 5  # about 1 + 2 + 4 s, then what is left of the 10 s
    assert sum(pauses) == pytest.approx(10)

    api, sent, notes, _ = mock_client([503, 200], retry_seconds=0)
    with pytest.raises(CommandError):
        api.get("/projects")
    assert len(sent) == 1 and notes == []


def test_retry_after_is_honoured() -> None:
    answers = [httpx.Response(503, headers={"Retry-After": "7"}), httpx.Response(200, json={})]
    pauses: list[float] = []
    api = ApiClient(
        ClientSettings(addr="http://winslow.test", token="t"),
        transport=httpx.MockTransport(lambda request: answers.pop(0)),
        sleep=pauses.append,
        note=lambda message: None,
    )
    assert api.get("/projects") == {}
    assert pauses == [7.0]


def test_4xx_and_500_are_answers_not_retried() -> None:
    for status in (404, 409, 500):
        api, sent, notes, _ = mock_client([status, 200])
        with pytest.raises(CommandError) as failed:
            api.get("/projects/nope")
        assert failed.value.status_code == status and len(sent) == 1 and notes == []


# -- completing twice -----------------------------------------------------------------------


def _send_one_part(winslow: Harness, base: str, path: str, data: bytes) -> dict:
    begun = winslow.api.post(base, json={"path": path, "size": len(data)})
    assert begun.status_code == 201, begun.text
    upload_id = begun.json()["upload_id"]
    urls = winslow.api.post(
        f"{base}/{upload_id}/urls", json={"path": path, "part_numbers": [1]}
    ).json()["urls"]
    assert httpx.put(urls["1"], content=data).status_code == 200
    return {
        "url": f"{base}/{upload_id}/complete",
        "body": {
            "path": path,
            "size": len(data),
            "parts": [{"part_number": 1, "md5": hashlib.md5(data).hexdigest()}],
        },
    }


def test_completing_a_resource_upload_twice_answers_the_file_twice(winslow: Harness) -> None:
    done = _send_one_part(winslow, "/api/v1/resources/uploads", "v/clip.bin", b"clip bytes")
    first = winslow.api.post(done["url"], json=done["body"])
    second = winslow.api.post(done["url"], json=done["body"])
    assert first.status_code == second.status_code == 200, second.text
    assert second.json() == first.json()
    assert first.json()["size"] == len(b"clip bytes")

    # Another file's parts do not pass for this one: still a 404.
    other = {**done["body"], "parts": [{"part_number": 1, "md5": hashlib.md5(b"x").hexdigest()}]}
    other["size"] = len(b"clip bytes")
    refused = winslow.api.post(done["url"], json=other)
    assert refused.status_code == 404, refused.text


GATED = """
name: fixable
stages:
  - name: prepare
    command: ["sh", "-c", "echo original > params.txt"]
  - name: review
    gate: true
    command: ["sh", "-c", "cat params.txt"]
"""


def test_completing_a_workspace_upload_twice_publishes_one_version(winslow: Harness) -> None:
    winslow.apply_pipeline(GATED)
    winslow.create("fix", "fixable", start=True)
    winslow.engine.run_until_idle()
    run = winslow.show("fix")["runs"][0]["id"]
    base = f"/api/v1/projects/fix/runs/{run}/workspace/uploads"
    done = _send_one_part(winslow, base, "params.txt", b"fixed\n")
    first = winslow.api.post(done["url"], json=done["body"])
    second = winslow.api.post(done["url"], json=done["body"])
    assert first.status_code == second.status_code == 200, second.text
    assert first.json()["version"] == second.json()["version"] == 2
    listing = winslow.api.get("/api/v1/projects/fix/workspace").json()
    assert listing["versions"] == [1, 2]  # no third version from the repeat
    history = winslow.api.get("/api/v1/projects/fix/history").json()["data"]
    uploads = [e for e in history if e["kind"] == "workspace-upload"]
    assert len(uploads) == 1


# -- a real server that goes away ---------------------------------------------------------


@pytest.mark.slow
def test_an_upload_completes_across_a_server_restart(
    winslow_server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every part is stored, then the server is killed; the CLI's ``complete`` waits for
    the restarted server instead of failing the upload."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    data = os.urandom(20 * 1024 * 1024 + 5)  # two parts
    local = tmp_path / "video.bin"
    local.write_bytes(data)
    notes: list[str] = []
    settings = ClientSettings(
        addr=winslow_server.addr, data_dir=winslow_server.data_dir, cli_retry_seconds=180
    )
    moved = [0]
    restart: list[threading.Thread] = []

    def kill_after_last_part(count: int) -> None:
        moved[0] += count
        if moved[0] == len(data) and not restart:
            winslow_server.kill9()
            restart.append(threading.Thread(target=winslow_server.start))
            restart[0].start()

    api = ApiClient(settings, note=notes.append)
    try:
        result = upload_file(api, local, "videos/video.bin", kill_after_last_part)
    finally:
        api.close()
        for thread in restart:
            thread.join()
    assert result["size"] == len(data)
    assert notes and notes[0].startswith("server not answering, retrying in ")
    listed = winslow_server.json("resources", "ls", "videos")
    assert [(e["path"], e["size"]) for e in listed["data"]] == [("videos/video.bin", len(data))]


@pytest.mark.slow
def test_the_cli_waits_for_a_server_started_again_on_its_port(winslow_server: Server) -> None:
    winslow_server.stop()
    waiting = subprocess.Popen(
        [str(BIN / "winslow"), "resources", "ls", "--json"],
        env={**winslow_server.env, "WINSLOW_CLI_RETRY_SECONDS": "180"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert waiting.stderr is not None
        first = waiting.stderr.readline()  # blocks until the CLI says it waits
        assert first.startswith("server not answering, retrying in "), first
        winslow_server.start()
        out, err = waiting.communicate(timeout=240)
    finally:
        if waiting.poll() is None:
            waiting.kill()
    assert waiting.returncode == 0, err
    assert '"data"' in out

    # A command that must not be repeated fails at once instead.
    winslow_server.stop()
    started = time.monotonic()
    refused = winslow_server.cli("project", "start", "nope", check=False)
    assert refused.returncode == 1 and "No Winslow server answers" in refused.stderr
    assert "retrying" not in refused.stderr
    assert time.monotonic() - started < 60
