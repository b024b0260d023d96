"""``winslow gc`` against a real server: abandoned uploads are counted, listed and aborted."""

from __future__ import annotations

import httpx
import pytest

from tests.fixtures.server import Server

pytestmark = pytest.mark.slow


def test_gc_aborts_abandoned_uploads_and_says_how_many(winslow_server: Server) -> None:
    server = winslow_server
    token = (server.data_dir / "admin-token").read_text().strip()
    begun = httpx.post(
        server.addr + "/api/v1/resources/uploads",
        json={"path": "videos/given-up.mp4", "size": 10},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert begun.status_code == 201, begun.text

    kept = server.json("gc", "--dry-run")
    assert (kept["uploads_active"], kept["uploads_abandoned"]) == (1, [])
    assert "would abort 0 unfinished uploads with no new part for 24h; 1 active ones stay" in (
        server.cli("gc", "--dry-run").stdout
    )

    dry = server.cli("gc", "--dry-run", "--multipart-older-than", "0s").stdout
    assert "would abort the upload to resources/videos/given-up.mp4" in dry
    assert "would abort 1 unfinished uploads with no new part for 0s" in dry

    done = server.json("gc", "--multipart-older-than", "0s")
    assert done["uploads_aborted"] == 1
    assert done["uploads_abandoned"] == ["resources/videos/given-up.mp4"]
    parts = httpx.get(
        server.addr + f"/api/v1/resources/uploads/{begun.json()['upload_id']}/parts",
        params={"path": "videos/given-up.mp4"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert parts.status_code == 404  # aborted: nothing left to resume

    bad = server.cli("gc", "--multipart-older-than", "soon", check=False)
    assert bad.returncode == 1 and "--multipart-older-than" in bad.stderr
