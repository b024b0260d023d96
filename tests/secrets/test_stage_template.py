"""Stage jobs with ``WINSLOW_NOMAD_CREDENTIALS=vault``: the template Nomad renders on the
node reads the KV v2 path Winslow's own S3 keys come from, and a token holding the stage
policy Winslow writes (``secrets/policy.py``) may read exactly that path, nothing else."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from tests.backends.nomad.test_jobspec import make_spec, task
from tests.secrets.conftest import OpenBao, make_token, put_secret
from winslow.backends.nomad.jobspec import render_jobspec
from winslow.secrets.policy import server_policy, stage_policy
from winslow.server import nomad_backend
from winslow.settings import Settings
from winslow.storage.s3 import S3Config

S3 = S3Config(endpoint_url="http://s3.internal:8333", access_key="a", secret_key="s", bucket="w")
IMAGE = "registry.lab:5000/winslow-tools:0.1.0"
SECRET_PATH = re.compile(r'\{\{ with secret "([^"]+)" \}\}')


def stage_job_secret_path(**fields: object) -> tuple[str, str]:
    """Render a stage job as ``winslow up`` would configure it; return the path its S3
    template reads and the template text."""
    settings = Settings(
        backend="nomad",
        nomad_addr="http://127.0.0.1:9",
        nomad_publish_credentials=False,
        nomad_credentials="vault",
        nomad_vault_role="winslow-stages",
        nomad_image=IMAGE,
        **fields,  # type: ignore[arg-type]
    )
    backend = nomad_backend(settings, S3)
    backend.client.close()
    job = render_jobspec(make_spec(image="registry.lab:5000/detect:1"), backend.config)
    (template,) = [
        t for t in task(job, "stage-in")["Templates"] if t["DestPath"] == "secrets/s3.env"
    ]
    found = SECRET_PATH.match(template["EmbeddedTmpl"])
    assert found is not None, template["EmbeddedTmpl"]
    return found.group(1), template["EmbeddedTmpl"]


def read(server: OpenBao, token: str, api_path: str) -> httpx.Response:
    """What Nomad's template runner asks Vault for: GET /v1/<path> with the task's token."""
    return httpx.get(f"{server.address}/v1/{api_path}", headers={"X-Vault-Token": token})


def test_default_path_follows_vault_mount_and_path():
    path, template = stage_job_secret_path(vault_mount="kv", vault_path="labs/winslow")
    assert path == "kv/data/labs/winslow/s3"
    assert "WINSLOW_S3_ACCESS_KEY={{ .Data.data.access_key | toJSON }}" in template
    assert "WINSLOW_S3_SECRET_KEY={{ .Data.data.secret_key | toJSON }}" in template
    assert stage_job_secret_path()[0] == "secret/data/winslow/s3"


def test_an_explicit_path_wins():
    path, _ = stage_job_secret_path(nomad_credentials_path="secret/data/stages/s3")
    assert path == "secret/data/stages/s3"


def test_a_path_that_is_no_kv2_api_path_stops_the_start():
    with pytest.raises(SystemExit, match="WINSLOW_NOMAD_CREDENTIALS_PATH='secret/winslow/s3'"):
        stage_job_secret_path(nomad_credentials_path="secret/winslow/s3")


def test_the_stage_policy_allows_the_rendered_path_and_nothing_else(
    openbao: OpenBao, vault_path: str
):
    put_secret(openbao, f"{vault_path}/s3", access_key="STAGE-AK", secret_key="STAGE-SK")
    put_secret(openbao, f"{vault_path}/database", url="postgresql://w:pw@db/winslow")
    put_secret(openbao, f"{vault_path}/nomad", token="nomad-token")
    path, _ = stage_job_secret_path(vault_path=vault_path)
    token = make_token(openbao, stage_policy("secret", vault_path))

    answer = read(openbao, token, path)
    assert answer.status_code == 200
    data = answer.json()["data"]["data"]  # what `.Data.data` is in the template
    assert (data["access_key"], data["secret_key"]) == ("STAGE-AK", "STAGE-SK")
    for other in (
        f"secret/data/{vault_path}/database",
        f"secret/data/{vault_path}/nomad",
        f"secret/data/{vault_path}",
        f"secret/metadata/{vault_path}/s3",
        "secret/data/elsewhere/s3",
    ):
        assert read(openbao, token, other).status_code == 403, other


def test_the_server_policy_allows_its_three_secrets(openbao: OpenBao, vault_path: str):
    for name in ("s3", "database", "nomad"):
        put_secret(openbao, f"{vault_path}/{name}", value=name)
    token = make_token(openbao, server_policy("secret", vault_path))
    for name in ("s3", "database", "nomad"):
        assert read(openbao, token, f"secret/data/{vault_path}/{name}").status_code == 200
    assert read(openbao, token, f"secret/data/{vault_path}-x/s3").status_code == 403
    assert server_policy("secret", "winslow") == (
        'path "secret/data/winslow/s3" {\n  capabilities = ["read"]\n}\n'
        'path "secret/data/winslow/database" {\n  capabilities = ["read"]\n}\n'
        'path "secret/data/winslow/nomad" {\n  capabilities = ["read"]\n}\n'
    )


def test_stage_jobs_read_vault_by_default_only_where_winslow_uses_vault():
    plain = Settings(backend="nomad")
    assert plain.resolved_nomad_credentials() == "nomad-variables"
    assert plain.resolved_nomad_credentials_path() == "nomad/jobs"
    with_vault = Settings(backend="nomad", vault_addr="https://vault.lab:8200", vault_path="w")
    assert with_vault.resolved_nomad_credentials() == "vault"
    assert with_vault.resolved_nomad_credentials_path() == "secret/data/w/s3"
    chosen = Settings(vault_addr="https://vault.lab:8200", nomad_credentials="nomad-variables")
    assert chosen.resolved_nomad_credentials_path() == "nomad/jobs"


SHIPPED = Path(__file__).resolve().parents[2] / "deploy" / "vault"


def shipped_policy(name: str) -> str:
    path = SHIPPED / name
    if not path.exists():
        pytest.skip(f"{path} is not in this checkout")
    return path.read_text()


def test_the_shipped_policies_allow_what_winslow_reads(openbao: OpenBao):
    """deploy/vault/ against the default settings (secret/, winslow/): the stage policy
    reads the rendered path and nothing else; the server policy reads its three secrets."""
    for name in ("s3", "database", "nomad"):
        put_secret(openbao, f"winslow/{name}", value=name)
    path, _ = stage_job_secret_path()
    stage = make_token(openbao, shipped_policy("winslow-stage-policy.hcl"))
    assert read(openbao, stage, path).status_code == 200
    for other in ("secret/data/winslow/database", "secret/data/winslow/nomad"):
        assert read(openbao, stage, other).status_code == 403, other
    server_token = make_token(openbao, shipped_policy("winslow-server-policy.hcl"))
    for name in ("s3", "database", "nomad"):
        assert read(openbao, server_token, f"secret/data/winslow/{name}").status_code == 200
