"""What a real cluster asks of the Nomad backend, against the stand-in acting as one: TLS
with a private CA and client certificates, a stage-in image a node cannot pull, whole
cores, node pools. Each stand-in behaviour used here is tested, with its source in
Nomad, in ``tests/nomad_standin/test_standin.py``."""

from __future__ import annotations

import time

import pytest

from tests.fixtures.nomad import SERVER_NAME, TlsFiles, make_tls
from tests.nomad_standin import NomadStandin, StandinTls
from winslow.backends.base import JobState, RunSpec
from winslow.backends.nomad.backend import NomadBackend
from winslow.backends.nomad.client import NomadClient
from winslow.backends.nomad.config import NomadConfig
from winslow.core.resources import ResourceRequest
from winslow.errors import BackendUnavailableError

WAIT_SECONDS = 30.0
TOOLS_IMAGE = "registry.invalid/winslow-tools:0.1.0"


def spec(job_id: str, cpus: float = 1, command: tuple[str, ...] = ("true",)) -> RunSpec:
    return RunSpec(
        job_id=job_id,
        project_id="p1",
        project_name="ulm-0603",
        pipeline="traffic",
        stage="detect",
        run_id=1,
        attempt=1,
        command=command,
        env={},
        resources=ResourceRequest(cpus=cpus, memory_mb=256),
    )


def wait_for(backend: NomadBackend, job_id: str, states: tuple[JobState, ...]):
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        status = backend.status(job_id)
        if status is not None and status.state in states:
            return status
        time.sleep(0.1)
    raise AssertionError(f"{job_id} never reached {states}: {backend.status(job_id)}")


# --- TLS ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tls(tmp_path_factory) -> TlsFiles:
    return make_tls(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def tls_standin(tls):
    """A stand-in serving HTTPS with Nomad's server certificate, requiring client ones."""
    standin = NomadStandin(tls=StandinTls(tls.server_cert, tls.server_key, client_ca=tls.ca))
    standin.start()
    try:
        standin.add_node("standin-1")
        yield standin
    finally:
        standin.stop()


def tls_client(standin: NomadStandin, tls: TlsFiles, **changes) -> tuple[NomadClient, list]:
    fields = {
        "address": standin.address,
        "ca_file": str(tls.ca),
        "client_cert": str(tls.client_cert),
        "client_key": str(tls.client_key),
        "tls_server_name": SERVER_NAME,
        **changes,
    }
    pauses: list[float] = []
    return NomadClient(NomadConfig(**fields), sleep=pauses.append), pauses


def test_right_ca_client_certificate_and_server_name_reach_nomad(tls_standin, tls):
    client, _ = tls_client(tls_standin, tls)
    nodes, _ = client.nodes.list()
    assert [n["Name"] for n in nodes] == ["standin-1"]


def test_wrong_ca_fails_at_once_saying_which_setting_to_change(tls_standin, tls):
    client, pauses = tls_client(tls_standin, tls, ca_file=str(tls.other_ca))
    with pytest.raises(BackendUnavailableError) as caught:
        client.nodes.list()
    message = caught.value.message
    assert message.startswith(
        f"GET /v1/nodes: Nomad at {tls_standin.address} shows a certificate that NOMAD_CACERT "
        f"({tls.other_ca}) does not vouch for ("
    )
    assert message.endswith("); set NOMAD_CACERT to the CA that signed Nomad's certificate.")
    assert pauses == []  # a certificate does not get better by asking again


def test_certificate_for_another_name_asks_for_the_tls_server_name(tls_standin, tls):
    client, _ = tls_client(tls_standin, tls, tls_server_name=None)
    with pytest.raises(BackendUnavailableError) as caught:
        client.nodes.list()
    assert "shows a certificate for another name (IP address mismatch" in caught.value.message
    assert "set NOMAD_TLS_SERVER_NAME to the name in it" in caught.value.message


def test_missing_client_certificate_asks_for_one(tls_standin, tls):
    """A Go agent answers the missing certificate with a TLS alert (certificate required),
    which names itself; the stand-in's Python server just hangs up after the handshake,
    so the message says what that usually means."""
    client, _ = tls_client(tls_standin, tls, client_cert=None, client_key=None)
    with pytest.raises(BackendUnavailableError) as caught:
        client.nodes.list()
    assert f"Nomad at {tls_standin.address} closed the connection without answering" in (
        caught.value.message
    )
    assert "verify_https_client" in caught.value.message
    assert "set NOMAD_CLIENT_CERT and NOMAD_CLIENT_KEY" in caught.value.message


def test_skip_verify_accepts_any_certificate(tls_standin, tls):
    client, _ = tls_client(tls_standin, tls, ca_file=str(tls.other_ca), skip_verify=True)
    nodes, _ = client.nodes.list()
    assert len(nodes) == 1


def test_unreadable_client_certificate_is_a_setting_error(tls, tmp_path):
    with pytest.raises(ValueError, match=r"^NOMAD_CLIENT_CERT='.*missing.pem' with"):
        NomadClient(NomadConfig(client_cert=str(tmp_path / "missing.pem"), client_key="k.pem"))


# --- images, cores, pools -----------------------------------------------------------------


@pytest.fixture
def cluster(nomad_standin, tmp_path) -> NomadStandin:
    nomad_standin.add_node("docker-1", drivers=("docker", "raw_exec"), node_pool="gpu")
    nomad_standin.put_variable("nomad/jobs", {"access_key": "a", "secret_key": "s"})
    return nomad_standin


def test_first_run_with_a_tools_image_no_node_can_pull_says_which_and_why(cluster):
    cluster.refuse_image(TOOLS_IMAGE)
    config = NomadConfig(
        address=cluster.address,
        allow_host_commands=True,
        winslow_image=TOOLS_IMAGE,
        s3_endpoint="http://s3.internal:8333",
        node_pool="gpu",
    )
    backend = NomadBackend(config)
    backend.submit(spec("winslow-p1-run-1"))
    status = wait_for(backend, "winslow-p1-run-1", (JobState.FAILED,))
    assert status.node == "docker-1"
    assert status.reason == (
        f"stage-in failed: cannot pull the image {TOOLS_IMAGE} on node docker-1: Error "
        'response from daemon: Get "https://registry.invalid/v2/": dial tcp: lookup '
        "registry.invalid on 127.0.0.53:53: no such host; set WINSLOW_NOMAD_IMAGE to an "
        "image the nodes can pull"
    )


@pytest.mark.parametrize(("cpus", "cores"), [(0.5, 1), (3, 3)])
def test_a_stage_gets_whole_cores_of_its_own_on_the_node(nomad_standin, cpus, cores):
    config = NomadConfig(
        address=nomad_standin.address,
        allow_host_commands=True,
        tools_driver="raw_exec",
        winslow_command="/bin/true",
        s3_endpoint="http://s3.internal:8333",
    )
    nomad_standin.put_variable("nomad/jobs", {"access_key": "a", "secret_key": "s"})
    backend = NomadBackend(config)
    backend.submit(spec("winslow-p1-run-2", cpus=cpus))
    deadline = time.monotonic() + WAIT_SECONDS
    while not (stubs := backend.client.jobs.allocations("winslow-p1-run-2")[0]):
        assert time.monotonic() < deadline, "Nomad placed nothing"
        time.sleep(0.05)
    [stub] = stubs
    alloc, _ = backend.client.allocations.read(stub["ID"])
    assert alloc is not None
    main = alloc["AllocatedResources"]["Tasks"]["main"]["Cpu"]
    assert len(main["ReservedCores"]) == cores
    assert main["CpuShares"] == cores * 1000  # what those cores are worth on this node
