"""The Nomad settings that are text, checked when ``winslow up`` starts: the tools image,
extra constraints, the namespace, TLS; each error names the setting to change."""

from __future__ import annotations

import logging

import pytest

from tests.fixtures.nomad import make_tls
from winslow import __version__
from winslow.backends.nomad.config import (
    TOOLS_IMAGE_PLACEHOLDER,
    NomadConfig,
    image_problem,
    parse_constraints,
)
from winslow.server import nomad_backend
from winslow.settings import Settings
from winslow.storage.s3 import S3Config

S3 = S3Config(
    endpoint_url="http://s3.internal:8333", access_key="a", secret_key="s", bucket="winslow"
)


def settings(**fields) -> Settings:
    return Settings(
        backend="nomad",
        nomad_addr="http://127.0.0.1:9",
        nomad_publish_credentials=False,
        **fields,
    )


# --- the stage-in/stage-out image ---------------------------------------------------------


@pytest.mark.parametrize(
    "image",
    [
        "registry.lab:5000/winslow-tools:0.1.0",
        "registry.example.com/vision/winslow-tools:0.1.0",
        "localhost:5000/winslow-tools:0.1.0-rc1",
        "10.0.0.5:5000/winslow-tools@sha256:" + "a" * 64,
        "ghcr.io/acme/winslow-tools:0.1.0@sha256:" + "0" * 64,
    ],
)
def test_fully_qualified_images_pass(image):
    assert image_problem(image) is None


@pytest.mark.parametrize(
    ("image", "words"),
    [
        ("winslow:0.1.0", "names no registry host, so docker would look for it on Docker Hub"),
        ("acme/winslow-tools:0.1.0", "names no registry host"),
        ("registry.lab:5000/winslow-tools", "has neither a tag nor a digest"),
        ("registry.lab:5000/Winslow:0.1.0", "is not an image reference"),
        ("registry.lab:5000/winslow tools:0.1", "is not an image reference"),
    ],
)
def test_images_that_are_not_fully_qualified_are_named_with_the_setting(image, words):
    problem = image_problem(image)
    assert problem is not None
    assert problem.startswith(f"WINSLOW_NOMAD_IMAGE={image!r} ")
    assert words in problem
    assert f"registry.example:5000/winslow-tools:{__version__}" in problem


def test_the_library_default_is_a_placeholder_no_node_can_pull():
    """RFC 2606 reserves ``.invalid``: a default that renders but is never pulled."""
    assert NomadConfig().winslow_image == TOOLS_IMAGE_PLACEHOLDER
    assert f"registry.invalid/winslow-tools:{__version__}" == TOOLS_IMAGE_PLACEHOLDER
    assert image_problem(TOOLS_IMAGE_PLACEHOLDER) is None


def test_start_without_an_image_for_docker_tools_says_what_to_set():
    with pytest.raises(SystemExit) as stopped:
        nomad_backend(settings(), S3)
    message = str(stopped.value)
    assert message.startswith("error: WINSLOW_NOMAD_IMAGE is not set;")
    assert f"<registry>/winslow-tools:{__version__}" in message
    assert "WINSLOW_NOMAD_TOOLS_DRIVER=raw_exec" in message


def test_start_with_an_image_without_registry_stops_naming_the_setting():
    with pytest.raises(SystemExit) as stopped:
        nomad_backend(settings(nomad_image="winslow:0.1.0"), S3)
    assert str(stopped.value).startswith("error: WINSLOW_NOMAD_IMAGE='winslow:0.1.0' names no")


def test_raw_exec_tools_need_no_image():
    backend = nomad_backend(
        settings(nomad_tools_driver="raw_exec", nomad_allow_host_commands=True), S3
    )
    assert backend.config.tools_driver == "raw_exec"  # type: ignore[attr-defined]


# --- namespace, node pool, constraints -----------------------------------------------------


def test_defaults_run_in_the_winslow_namespace_in_every_node_pool(monkeypatch):
    for name in ("NOMAD_NAMESPACE", "WINSLOW_NOMAD_NAMESPACE"):
        monkeypatch.delenv(name, raising=False)
    backend = nomad_backend(settings(nomad_image="registry.lab:5000/winslow-tools:0.1.0"), S3)
    config = backend.config  # type: ignore[attr-defined]
    assert config.namespace == "winslow"
    assert (config.node_pool, config.constraints) == (None, ())


def test_winslows_own_nomad_variables_win_over_the_nomad_clis(monkeypatch):
    """A shell set up for the `nomad` CLI (say `NOMAD_NAMESPACE=default`) must not move
    Winslow's jobs out of the namespace its operator named for Winslow alone."""
    monkeypatch.setenv("NOMAD_NAMESPACE", "default")
    monkeypatch.setenv("WINSLOW_NOMAD_NAMESPACE", "winslow-lab")
    monkeypatch.setenv("NOMAD_ADDR", "http://cli.example:4646")
    monkeypatch.setenv("WINSLOW_NOMAD_ADDR", "http://nomad.lab:4646")
    chosen = Settings()
    assert (chosen.nomad_namespace, chosen.nomad_addr) == ("winslow-lab", "http://nomad.lab:4646")
    monkeypatch.delenv("WINSLOW_NOMAD_NAMESPACE")
    assert Settings().nomad_namespace == "default"


def test_node_pool_and_constraints_reach_the_config(monkeypatch):
    monkeypatch.setenv("WINSLOW_NOMAD_NODE_POOL", "gpu")
    monkeypatch.setenv("WINSLOW_NOMAD_CONSTRAINTS", "${node.class} = gpu; ${meta.rack} != r1")
    backend = nomad_backend(settings(nomad_image="registry.lab:5000/winslow-tools:0.1.0"), S3)
    config = backend.config  # type: ignore[attr-defined]
    assert config.node_pool == "gpu"
    assert config.constraints == (("${node.class}", "=", "gpu"), ("${meta.rack}", "!=", "r1"))


def test_constraints_syntax():
    assert parse_constraints("") == ()
    assert parse_constraints(
        " ${node.class} = gpu ;${attr.unique.hostname} regexp ^gpu-(a|b) [0-9]$;"
        "${meta.maintenance} is_not_set; ${attr.nvidia.driver} version >= 550"
    ) == (
        ("${node.class}", "=", "gpu"),
        ("${attr.unique.hostname}", "regexp", "^gpu-(a|b) [0-9]$"),
        ("${meta.maintenance}", "is_not_set", ""),
        ("${attr.nvidia.driver}", "version", ">= 550"),
    )


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("node.class = gpu", "'node.class' is no node attribute"),
        ("${device.model} = A100", "'${device.model}' is no node attribute"),
        ("${node.class} equals gpu", "'equals' is not one of Nomad's operators"),
        ("${node.class} =", "= needs a value after it"),
        ("${node.class}", "'${node.class}' is not a constraint"),
        ("${meta.rack} is_set r1", "is_set takes no value; remove 'r1'"),
        ("${node.class} regexp gpu(?=-a)", "uses a look-ahead '(?='"),
        ("${node.class} regexp gpu(", "is not a regular expression"),
        ("${node.class} distinct_hosts", "'distinct_hosts' is not one of Nomad's operators"),
    ],
)
def test_bad_constraints_name_the_setting_and_the_constraint(text, words):
    with pytest.raises(ValueError) as caught:
        parse_constraints(text)
    message = str(caught.value)
    assert message.startswith("WINSLOW_NOMAD_CONSTRAINTS: ")
    assert words in message


def test_start_with_a_bad_constraint_stops(monkeypatch):
    monkeypatch.setenv("WINSLOW_NOMAD_CONSTRAINTS", "${node.class} ~ gpu")
    with pytest.raises(SystemExit) as stopped:
        nomad_backend(settings(nomad_image="registry.lab:5000/winslow-tools:0.1.0"), S3)
    assert str(stopped.value).startswith("error: WINSLOW_NOMAD_CONSTRAINTS: '${node.class} ~ gpu'")


# --- TLS settings --------------------------------------------------------------------------


def test_tls_settings_read_the_nomad_cli_variables(monkeypatch, caplog, tmp_path):
    files = make_tls(tmp_path)
    monkeypatch.setenv("NOMAD_CACERT", str(files.ca))
    monkeypatch.setenv("NOMAD_CLIENT_CERT", str(files.client_cert))
    monkeypatch.setenv("NOMAD_CLIENT_KEY", str(files.client_key))
    monkeypatch.setenv("NOMAD_TLS_SERVER_NAME", "server.global.nomad")
    monkeypatch.setenv("NOMAD_SKIP_VERIFY", "true")
    with caplog.at_level(logging.WARNING, logger="winslow.server"):
        backend = nomad_backend(settings(nomad_image="registry.lab:5000/winslow-tools:0.1.0"), S3)
    config = backend.config  # type: ignore[attr-defined]
    assert (config.ca_file, config.client_cert, config.client_key) == (
        str(files.ca),
        str(files.client_cert),
        str(files.client_key),
    )
    assert config.tls_server_name == "server.global.nomad"
    assert config.skip_verify is True
    assert "NOMAD_SKIP_VERIFY is set: Winslow accepts any certificate" in caplog.text


def test_an_unreadable_client_certificate_stops_naming_it(monkeypatch, tmp_path):
    monkeypatch.setenv("NOMAD_CLIENT_CERT", str(tmp_path / "nomad-cli.pem"))
    monkeypatch.setenv("NOMAD_CLIENT_KEY", str(tmp_path / "nomad-cli-key.pem"))
    with pytest.raises(SystemExit) as stopped:
        nomad_backend(settings(nomad_image="registry.lab:5000/winslow-tools:0.1.0"), S3)
    assert str(stopped.value).startswith(
        f"error: NOMAD_CLIENT_CERT='{tmp_path / 'nomad-cli.pem'}' with NOMAD_CLIENT_KEY="
    )


def test_a_client_certificate_without_its_key_stops(monkeypatch):
    monkeypatch.setenv("NOMAD_CLIENT_CERT", "/etc/winslow/nomad-cli.pem")
    monkeypatch.delenv("NOMAD_CLIENT_KEY", raising=False)
    with pytest.raises(SystemExit) as stopped:
        nomad_backend(settings(nomad_image="registry.lab:5000/winslow-tools:0.1.0"), S3)
    assert str(stopped.value) == (
        "error: NOMAD_CLIENT_CERT is set but NOMAD_CLIENT_KEY is not; set both, or neither."
    )
