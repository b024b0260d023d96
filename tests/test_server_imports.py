"""What a server on the local backend, with neither OpenID Connect nor Nomad set up, keeps
out of memory: each library below is loaded on its first use, never at start (LDAP's:
``tests/identity/test_ldap_signin.py``)."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
from pathlib import Path

from tests.fixtures.server import BIN
from winslow.storage.s3 import S3Config
from winslow.store.db import newest_revision

LOADED_ON_FIRST_USE = {
    "jwt": "OpenID Connect sign-in (with cryptography, about 9 MB)",
    "cryptography": "OpenID Connect sign-in",
    "jsonschema": "checking a Nomad job spec (with referencing and rpds, about 3 MB)",
    "markdown_it": "rendering a gate's text",
    "regex": "searching a log",
}


def test_a_local_server_loads_no_library_it_has_not_used_yet() -> None:
    """The server's whole app, built as `winslow up` builds it, loads none of these: each
    was imported at start (about 8 MB of the idle server's memory), set up or not."""
    loaded = subprocess.run(
        [
            str(BIN / "python"),
            "-c",
            "import json, sys, winslow.server, winslow.api.app; print(json.dumps(sorted("
            "{m.split('.')[0] for m in sys.modules}"
            " | {m for m in sys.modules if m.startswith('winslow.backends.nomad')})))",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    names = set(json.loads(loaded.stdout))
    assert {name: why for name, why in LOADED_ON_FIRST_USE.items() if name in names} == {}
    assert "winslow.backends.nomad" not in names, "a local server loads the Nomad backend"


STARTS = """
import json, os, sys
from winslow import server
running = server.start_services(server.load_settings())
try:
    revision = running.context.store.engine.connect().exec_driver_sql(
        "SELECT version_num FROM alembic_version").scalar()
    print(json.dumps({"alembic": "alembic" in sys.modules, "revision": revision}))
finally:
    server.stop_services(running)
"""


def test_a_first_start_migrates_its_new_database_without_loading_alembic(
    s3_server: S3Config, tmp_path: Path
) -> None:
    """Issue 17: a start on a new data folder (and the first after an upgrade) migrated the
    database in the server, which carried alembic's 11 MB from then on; it migrates in a
    child process now."""
    env = {
        **os.environ,
        "WINSLOW_DATA_DIR": str(tmp_path / "data"),
        "WINSLOW_S3_ENDPOINT": s3_server.endpoint_url,
        "WINSLOW_S3_ACCESS_KEY": s3_server.access_key,
        "WINSLOW_S3_SECRET_KEY": s3_server.secret_key,
        "WINSLOW_S3_BUCKET": f"first-start-{secrets.token_hex(4)}",
        "WINSLOW_TELEMETRY_SECONDS": "0",
    }
    started = subprocess.run(
        [str(BIN / "python"), "-c", STARTS],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=True,
    )
    said = json.loads(started.stdout.strip().splitlines()[-1])
    assert said == {"alembic": False, "revision": newest_revision()}
