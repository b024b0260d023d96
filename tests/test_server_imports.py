"""What a server on the local backend, with neither OpenID Connect nor Nomad set up, keeps
out of memory: each library below is loaded on its first use, never at start (LDAP's:
``tests/identity/test_ldap_signin.py``)."""

from __future__ import annotations

import json
import subprocess

from tests.fixtures.server import BIN

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
