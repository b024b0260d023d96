"""The images and the registry: ``registry/Dockerfile*`` built as ``make images`` builds them,
pushed to a real Distribution registry (Debian's ``docker-registry``) with htpasswd auth,
deleted here and pulled back, then used: the traffic image runs a stage on the local
backend, the tools image runs ``winslow stage-in`` against real S3, the service image
answers ``/api/v1/health`` and its own HEALTHCHECK; ``winslow images`` lists what was pushed.

No image can be pulled from the internet here, so the base is Debian bookworm with Python
from debootstrap (``scripts/build-base-image.sh``, cached by tag). The tests skip, saying
why, where docker does not answer or the registry, htpasswd or debootstrap are missing
(``make registry-deps`` installs them on Debian). The fast ones at the top need only the
registry binary: they push a small manifest over the registry's own HTTP API.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import runpy
import shutil
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.examples.test_traffic import EXAMPLE, generate_video
from tests.fixtures.containers import docker_answers
from tests.fixtures.ports import pick_ports
from tests.fixtures.server import BIN
from tests.fixtures.winslow import Harness
from tests.fixtures.workspaces import read_workspace
from winslow import __version__
from winslow.cli import images
from winslow.cli.images import RegistryClient, docker_credentials, next_page, registry_url
from winslow.storage.objects import ObjectStore

ROOT = Path(__file__).resolve().parents[1]
USER, PASSWORD = "operator", "not-a-real-secret"
PREFIX = "winslow-test-images/"
"""Local names of the images the test builds, apart from a developer's `make images`."""
IMAGES = {"service": "winslow", "tools": "winslow-tools", "traffic": "winslow-traffic"}


BUILDS_IMAGES = pytest.mark.timeout(1200)
"""For the tests of the ``pulled`` images: whichever runs first builds, pushes and pulls
three images in its setup, 2 to 4 minutes here and over the suite's 5-minute limit when
the machine ran at half speed."""


@dataclass
class Registry:
    host: str
    """``127.0.0.1:<port>``, as ``make push REGISTRY=`` takes it."""

    @property
    def url(self) -> str:
        return f"http://{self.host}"


# What the images install


def test_constraints_pin_every_requirement_the_images_install() -> None:
    """A dependency added to pyproject.toml without `make constraints` fails here, not in
    an image build on the operator's machine."""
    pins = {}
    for line in (ROOT / "registry" / "constraints.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            pins[canonicalize_name(name)] = version
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    for text in project["dependencies"] + extras["postgres"] + extras["examples"]:
        req = Requirement(text)
        name = canonicalize_name(req.name)
        assert name in pins, f"{req.name} has no pin in registry/constraints.txt"
        assert req.specifier.contains(pins[name]), f"{req.name}=={pins[name]} is not {req}"


def test_a_changed_pin_leaves_no_stale_wheel_for_the_image(tmp_path: Path) -> None:
    """A pin moved from 0.29.2 to 0.28.0 left both typer wheels in the cache, and the
    image's `pip install wheels/*.whl` failed on the two versions."""
    script = runpy.run_path(str(ROOT / "scripts" / "images.py"))
    constraints = tmp_path / "constraints.txt"
    constraints.write_text("# pins\ntyper==0.28.0\npydantic-core==2.50.5\n")
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    names = [
        "typer-0.29.2-py3-none-any.whl",
        "typer-0.28.0-py3-none-any.whl",
        "pydantic_core-2.50.5-cp311-cp311-manylinux2014_x86_64.whl",
        "winslow-0.1.0-py3-none-any.whl",
    ]
    for name in names:
        (wheels / name).write_bytes(b"")
    stale = script["drop_stale_wheels"](wheels, script["pinned_versions"](constraints))
    assert [p.name for p in stale] == [names[0], names[3]]
    assert sorted(p.name for p in wheels.iterdir()) == sorted([names[1], names[2]])


TOOLS_IMPORTS = """
import importlib, json, sys
from importlib.metadata import packages_distributions
import winslow.cli.main, winslow.node.stagetools, winslow.node.checkpoint, winslow.node.follow
for module, _ in winslow.cli.main.NOUNS.values():  # loaded when a command names the noun
    importlib.import_module(module)
owners = packages_distributions()
print(json.dumps(sorted({d for m in list(sys.modules) for d in owners.get(m.split(".")[0], [])})))
"""


def test_the_tools_commands_import_nothing_the_tools_image_leaves_out() -> None:
    """The tools image installs winslow without the server's dependencies; a module-level
    import of one of them on the CLI's path would break every stage-in on Nomad."""
    server_only = runpy.run_path(str(ROOT / "scripts" / "images.py"))["SERVER_ONLY"]
    loaded = subprocess.run(
        [sys.executable, "-c", TOOLS_IMPORTS], capture_output=True, text=True, check=True
    ).stdout
    assert {canonicalize_name(d) for d in json.loads(loaded)} & server_only == set()


# `winslow images`, pure parts


@pytest.mark.parametrize(
    ("given", "url"),
    [
        ("registry.lab:5000", "https://registry.lab:5000"),
        ("127.0.0.1:5000", "http://127.0.0.1:5000"),
        ("localhost:5000/", "http://localhost:5000"),
        ("http://registry.lab:5000", "http://registry.lab:5000"),
    ],
)
def test_registry_url_is_https_except_on_loopback(given: str, url: str) -> None:
    assert registry_url(given) == url


def test_docker_credentials_are_found_by_host_whatever_the_key() -> None:
    auth = base64.b64encode(b"alice:pa:ss").decode()
    config = {"auths": {"https://registry.lab:5000": {"auth": auth}, "other:1": {}}}
    assert docker_credentials(config, "registry.lab:5000") == ("alice", "pa:ss")
    assert docker_credentials(config, "other:1") is None
    assert docker_credentials({"credsStore": "desktop"}, "registry.lab:5000") is None


def test_next_page_follows_the_link_header() -> None:
    current = "http://r:5000/v2/_catalog?n=1"
    link = '</v2/_catalog?last=a&n=1>; rel="next"'
    assert next_page(link, current) == "http://r:5000/v2/_catalog?last=a&n=1"
    assert next_page(None, current) is None


def test_a_bearer_challenge_is_answered_with_a_token_from_its_realm() -> None:
    """Registries behind a token service (Harbor, GitLab, registry:2 with `auth: token`)
    answer 401 with a Bearer challenge; docker asks the realm for a token, and so do we."""
    seen: list[tuple[str, str | None]] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append((str(request.url), request.headers.get("authorization")))
        if request.url.host == "auth.lab":
            assert request.url.params["scope"] == "registry:catalog:*"
            return httpx.Response(200, json={"token": "t0k"})
        if request.headers.get("authorization") != "Bearer t0k":
            challenge = (
                'Bearer realm="https://auth.lab/token",service="reg",scope="registry:catalog:*"'
            )
            return httpx.Response(401, headers={"WWW-Authenticate": challenge})
        return httpx.Response(200, json={"repositories": ["stages/detect"]})

    client = RegistryClient(
        "registry.lab:5000", ("alice", "pw"), transport=httpx.MockTransport(answer)
    )
    try:
        assert client.catalog() == ["stages/detect"]
    finally:
        client.close()
    basic = "Basic " + base64.b64encode(b"alice:pw").decode()
    assert seen[1] == ("https://auth.lab/token?service=reg&scope=registry%3Acatalog%3A%2A", basic)
    assert seen[2][1] == "Bearer t0k"


def test_every_dockerfile_takes_its_base_and_labels_as_build_arguments() -> None:
    """The GPU image is never built here (no CUDA base): this at least holds it to the
    others' shape."""
    for dockerfile in sorted((ROOT / "registry").glob("Dockerfile*")):
        text = dockerfile.read_text()
        first_from = next(line for line in text.splitlines() if line.startswith("FROM "))
        assert first_from.split()[1] in ("${BASE_IMAGE}", "${CUDA_BASE}"), dockerfile.name
        assert text.index("ARG ") < text.index("FROM "), dockerfile.name
        for label, arg in (("source", "SOURCE"), ("version", "VERSION"), ("revision", "REVISION")):
            assert f'org.opencontainers.image.{label}="${{{arg}}}"' in text, dockerfile.name
        assert "--no-index" in text and "-c /build/constraints.txt" in text, dockerfile.name


def test_make_images_and_push_use_the_classic_builder_and_the_registry() -> None:
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    dry = subprocess.run(
        ["make", "-n", "images", "push", "IMAGES=tools", "BASE_IMAGE=base:1", "REGISTRY=reg:5000"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert "DOCKER_BUILDKIT=0 .venv/bin/python scripts/images.py build --images tools" in dry
    assert "--base-image base:1" in dry
    assert "scripts/images.py push --registry reg:5000 --images tools" in dry


# A real registry


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """Debian's Distribution registry on 127.0.0.1 with htpasswd (bcrypt) auth."""
    binary, htpasswd = shutil.which("docker-registry"), shutil.which("htpasswd")
    if binary is None or htpasswd is None:
        pytest.skip("docker-registry or htpasswd is missing (Debian: make registry-deps)")
    folder = tmp_path_factory.mktemp("registry")
    users = subprocess.run(
        [htpasswd, "-Bbn", USER, PASSWORD], check=True, capture_output=True, text=True
    ).stdout
    (folder / "htpasswd").write_text(users)
    (port,) = pick_ports(1)
    config = {
        "version": 0.1,
        "log": {"level": "warn"},
        "storage": {"filesystem": {"rootdirectory": str(folder / "data")}},
        "http": {"addr": f"127.0.0.1:{port}", "secret": "test"},
        "auth": {"htpasswd": {"realm": "winslow-test", "path": str(folder / "htpasswd")}},
    }
    (folder / "config.yml").write_text(json.dumps(config))  # YAML is a superset of JSON
    log = (folder / "registry.log").open("wb")
    process = subprocess.Popen(
        [binary, "serve", str(folder / "config.yml")], stdout=log, stderr=subprocess.STDOUT
    )
    registry = Registry(f"127.0.0.1:{port}")
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{registry.url}/v2/", timeout=2).status_code == 401:
                    break
            except httpx.TransportError:
                pass
            assert process.poll() is None, (folder / "registry.log").read_text()
            assert time.monotonic() < deadline, "the registry did not answer within 30 s"
            time.sleep(0.1)
        yield registry
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


def push_manifest(registry: Registry, name: str, tag: str) -> None:
    """Push a config-only image over the registry's HTTP API, as docker push would."""
    config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {}}).encode()
    digest = "sha256:" + hashlib.sha256(config).hexdigest()
    with httpx.Client(base_url=registry.url, auth=(USER, PASSWORD), timeout=10) as http:
        start = http.post(f"/v2/{name}/blobs/uploads/")
        assert start.status_code == 202, start.text
        # The upload URL carries the registry's own state in its query: add to it.
        url = httpx.URL(start.headers["location"]).copy_merge_params({"digest": digest})
        upload = http.put(url, content=config)
        assert upload.status_code == 201, upload.text
        manifest = {
            "schemaVersion": 2,
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "config": {
                "mediaType": "application/vnd.docker.container.image.v1+json",
                "size": len(config),
                "digest": digest,
            },
            "layers": [],
        }
        put = http.put(
            f"/v2/{name}/manifests/{tag}",
            content=json.dumps(manifest),
            headers={"Content-Type": manifest["mediaType"]},
        )
        assert put.status_code == 201, put.text


def winslow_images(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "winslow"), "images", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def docker_config(folder: Path, registry: Registry, password: str = PASSWORD) -> Path:
    """A docker config folder as ``docker login`` leaves it."""
    folder.mkdir(exist_ok=True)
    auth = base64.b64encode(f"{USER}:{password}".encode()).decode()
    (folder / "config.json").write_text(json.dumps({"auths": {registry.host: {"auth": auth}}}))
    return folder


def test_images_lists_repositories_and_tags_with_docker_logins_credentials(
    registry: Registry, tmp_path: Path
) -> None:
    push_manifest(registry, "stages/detect", "1.2.0")
    push_manifest(registry, "stages/detect", "1.3.0")
    push_manifest(registry, "stages/track", "0.9")
    env = {
        "WINSLOW_REGISTRY": registry.host,
        "DOCKER_CONFIG": str(docker_config(tmp_path / "docker", registry)),
    }
    listed = winslow_images("--json", env=env)
    assert listed.returncode == 0, listed.stderr
    repositories = {r["name"]: r["tags"] for r in json.loads(listed.stdout)["repositories"]}
    assert repositories["stages/detect"] == ["1.2.0", "1.3.0"]
    assert repositories["stages/track"] == ["0.9"]

    one = winslow_images("stages/track", env=env)
    assert one.returncode == 0, one.stderr
    assert f"{registry.host}/stages/track" in one.stdout and "0.9" in one.stdout
    assert "detect" not in one.stdout  # only the repository asked for


def test_images_with_a_wrong_password_says_how_to_log_in(
    registry: Registry, tmp_path: Path
) -> None:
    env = {
        "WINSLOW_REGISTRY": registry.host,
        "WINSLOW_REGISTRY_USER": USER,
        "WINSLOW_REGISTRY_PASSWORD": "wrong",
    }
    refused = winslow_images(env=env)
    assert refused.returncode == 1
    assert refused.stderr.startswith(f"error: The registry at {registry.url} refused")
    assert f"docker login {registry.host}" in refused.stderr
    assert "wrong" not in refused.stderr


def test_images_names_a_missing_repository_and_a_missing_registry(registry: Registry) -> None:
    env = {"WINSLOW_REGISTRY_USER": USER, "WINSLOW_REGISTRY_PASSWORD": PASSWORD}
    missing = winslow_images("no/such", "--registry", registry.host, env=env)
    assert missing.returncode == 1
    assert "No repository 'no/such'" in missing.stderr
    unset = winslow_images(env={"WINSLOW_REGISTRY": ""})
    assert unset.returncode == 2 and "--registry" in unset.stderr
    (closed,) = pick_ports(1)
    silent = winslow_images("--registry", f"127.0.0.1:{closed}", env={})
    assert silent.returncode == 1
    assert f"error: The registry at http://127.0.0.1:{closed} does not answer" in silent.stderr


def test_catalog_and_tags_are_read_page_by_page(
    registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("paged/a", "paged/b", "paged/c"):
        push_manifest(registry, name, "v1")
    push_manifest(registry, "paged/a", "v2")
    monkeypatch.setattr(images, "PAGE_SIZE", 1)
    client = RegistryClient(registry.host, (USER, PASSWORD))
    try:
        assert {"paged/a", "paged/b", "paged/c"} <= set(client.catalog())
        assert sorted(client.tags("paged/a")) == ["v1", "v2"]
    finally:
        client.close()


# Built, pushed, pulled back, used


def docker(*args: str, env: dict[str, str] | None = None, timeout: float = 300) -> str:
    done = subprocess.run(
        ["docker", *args], capture_output=True, text=True, env=env, timeout=timeout
    )
    assert done.returncode == 0, f"docker {' '.join(args)}: {done.stderr[-2000:]}"
    return done.stdout


def remove_images(*names: str) -> None:
    subprocess.run(["docker", "rmi", "-f", *names], capture_output=True, check=False)


@pytest.fixture(scope="module")
def pulled(
    registry: Registry, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, str]]:
    """The service, tools and traffic images, built from the local base, pushed, deleted
    here and pulled back from the registry: ``{key: registry/name:version}``."""
    if not (ROOT / "winslow/ui/node_modules/spark-md5/spark-md5.min.js").is_file():
        pytest.skip("the console's npm package is missing: run `make install`")
    base = local_base_image()
    env = {**os.environ, "DOCKER_CONFIG": str(tmp_path_factory.mktemp("docker"))}
    keys = ",".join(IMAGES)
    script = [sys.executable, str(ROOT / "scripts" / "images.py")]
    common = ["--images", keys, "--prefix", PREFIX]
    built = subprocess.run(
        [*script, "build", *common, "--base-image", base],
        capture_output=True, text=True, env=env, timeout=900,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr[-3000:]
    login = subprocess.run(
        ["docker", "login", "-u", USER, "--password-stdin", registry.host],
        input=PASSWORD, capture_output=True, text=True, env=env,
    )  # fmt: skip
    assert login.returncode == 0, login.stderr
    pushed = subprocess.run(
        [*script, "push", *common, "--registry", registry.host],
        capture_output=True, text=True, env=env, timeout=600,
    )  # fmt: skip
    assert pushed.returncode == 0, pushed.stderr[-3000:]

    commit = next(
        line.split("REVISION=")[1].split()[0]
        for line in built.stderr.splitlines()
        if "REVISION=" in line
    )
    remote = {key: f"{registry.host}/{name}" for key, name in IMAGES.items()}
    every_tag = [
        f"{prefix}:{tag}"
        for key, name in IMAGES.items()
        for prefix in (PREFIX + name, remote[key])
        for tag in (__version__, commit)
    ]
    remove_images(*every_tag)
    for key in IMAGES:
        gone = subprocess.run(["docker", "image", "inspect", f"{remote[key]}:{__version__}"])
        assert gone.returncode != 0, f"{key} is still here; the pull would prove nothing"
    for key in IMAGES:
        docker("pull", "-q", f"{remote[key]}:{__version__}", env=env)
        docker("pull", "-q", f"{remote[key]}:{commit}", env=env)
    try:
        yield {key: f"{remote[key]}:{__version__}" for key in IMAGES} | {
            "commit": commit,
            "docker_config": env["DOCKER_CONFIG"],
        }
    finally:
        remove_images(*(t for t in every_tag if not t.startswith(PREFIX)))


def local_base_image() -> str:
    """The Debian base ``make images`` builds on here (cached by tag), or skip saying why."""
    if not docker_answers():
        pytest.skip("no container engine: docker is missing or its daemon does not answer")
    base = subprocess.run(
        [str(ROOT / "scripts" / "build-base-image.sh")], capture_output=True, text=True
    )
    if base.returncode != 0:
        reason = (base.stderr.strip().splitlines() or ["it printed nothing"])[-1]
        pytest.skip(f"no local base image (scripts/build-base-image.sh): {reason}")
    return base.stdout.strip()


@pytest.mark.slow
@pytest.mark.containers
def test_push_sends_the_commit_the_image_was_built_from_whatever_the_tree_is_now(
    registry: Registry, tmp_path: Path
) -> None:
    """`make images`, a change to the tree, then `make push`: the push asked docker for
    `<commit>-dirty`, a tag no image had, and failed. It now pushes the version's image
    under the commit written in its revision label; an image never built is named."""
    base = local_base_image()
    prefix = f"winslow-push-{os.getpid()}/"
    local = f"{prefix}winslow-tools:{__version__}"
    (tmp_path / "Dockerfile").write_text(
        f"FROM {base}\nLABEL org.opencontainers.image.revision=0123abc\n"
    )
    docker("build", "-q", "-t", local, str(tmp_path), env={**os.environ, "DOCKER_BUILDKIT": "0"})
    env = {**os.environ, "DOCKER_CONFIG": str(tmp_path / "docker")}
    remote = f"{registry.host}/pushed"
    try:
        login = subprocess.run(
            ["docker", "login", "-u", USER, "--password-stdin", registry.host],
            input=PASSWORD, capture_output=True, text=True, env=env,
        )  # fmt: skip
        assert login.returncode == 0, login.stderr
        script = [sys.executable, str(ROOT / "scripts" / "images.py"), "push", "--prefix", prefix]
        pushed = subprocess.run(
            [*script, "--images", "tools", "--registry", remote],
            capture_output=True, text=True, env=env, timeout=300,
        )  # fmt: skip
        assert pushed.returncode == 0, pushed.stderr[-3000:]
        listed = winslow_images(
            "--json", env={"WINSLOW_REGISTRY": registry.host, "DOCKER_CONFIG": env["DOCKER_CONFIG"]}
        )
        assert listed.returncode == 0, listed.stderr
        tags = {r["name"]: r["tags"] for r in json.loads(listed.stdout)["repositories"]}
        assert tags["pushed/winslow-tools"] == sorted([__version__, "0123abc"])

        missing = subprocess.run(
            [*script, "--images", "traffic", "--registry", remote],
            capture_output=True, text=True, env=env, timeout=60,
        )  # fmt: skip
        assert missing.returncode == 1
        assert missing.stderr.strip().splitlines()[-1] == (
            f"error: {prefix}winslow-traffic:{__version__} is not built on this machine; "
            "run `make images` first"
        )
    finally:
        remove_images(
            local, f"{remote}/winslow-tools:{__version__}", f"{remote}/winslow-tools:0123abc"
        )


@pytest.mark.slow
@pytest.mark.containers
@BUILDS_IMAGES
def test_pulled_images_carry_their_version_and_commit(pulled: dict[str, str]) -> None:
    labels = json.loads(docker("image", "inspect", "--format", "{{json .Config.Labels}}",
                               pulled["service"]))  # fmt: skip
    assert labels["org.opencontainers.image.version"] == __version__
    assert labels["org.opencontainers.image.revision"] == pulled["commit"]
    assert "org.opencontainers.image.source" in labels
    user = docker("image", "inspect", "--format", "{{.Config.User}}", pulled["service"])
    assert user.strip() == "winslow"  # the server never runs as root


@pytest.mark.slow
@pytest.mark.containers
@BUILDS_IMAGES
def test_images_lists_what_make_push_pushed(registry: Registry, pulled: dict[str, str]) -> None:
    listed = winslow_images(
        "--json", env={"WINSLOW_REGISTRY": registry.host, "DOCKER_CONFIG": pulled["docker_config"]}
    )
    assert listed.returncode == 0, listed.stderr
    repositories = {r["name"]: r["tags"] for r in json.loads(listed.stdout)["repositories"]}
    for name in IMAGES.values():
        assert repositories[name] == sorted([__version__, pulled["commit"]])


@pytest.mark.slow
@pytest.mark.containers
@BUILDS_IMAGES
def test_pulled_traffic_image_runs_the_detect_stage_on_the_local_backend(
    winslow: Harness, pulled: dict[str, str], tmp_path: Path
) -> None:
    pytest.importorskip("cv2", reason="generating the road video needs opencv-python-headless")
    video = tmp_path / "road.mp4"
    generate_video(video, tmp_path / "truth.json")
    winslow.context.objects.upload_file(video, "resources/videos/road.mp4")
    # The example pipeline as shipped, its stages in the pulled image.
    text = (EXAMPLE / "pipeline.yaml").read_text()
    text = text.replace("    command: [", f"    image: {pulled['traffic']}\n    command: [")
    winslow.apply_pipeline(text)
    winslow.create(
        "boxed",
        "traffic",
        start=True,
        variables={"INPUT_VIDEO": "videos/road.mp4", "EXAMPLES_DIR": "/opt/traffic"},
    )
    winslow.engine.run_until_idle(timeout=180)
    project = winslow.show("boxed")
    detect = project["runs"][0]
    assert (detect["stage"], detect["state"]) == ("detect", "succeeded"), winslow.log(
        "boxed", detect["id"]
    )
    assert project["state"] == "awaiting_input"  # at the review gate
    assert detect["results"]["detections"] > 0
    files = read_workspace(winslow.context.objects, detect["workspace"])
    assert files["detections.csv"].startswith(b"frame,")


@pytest.mark.slow
@pytest.mark.containers
@BUILDS_IMAGES
def test_pulled_tools_image_runs_stage_in_against_s3(
    pulled: dict[str, str], object_store: ObjectStore, tmp_path: Path
) -> None:
    object_store.put_bytes("resources/clips/a.txt", b"from the pool\n")
    cfg = object_store.cfg
    node = tmp_path / "alloc"
    node.mkdir()
    ran = subprocess.run(
        [
            "docker", "run", "--rm", "--network", "host", "-v", f"{node}:/alloc",
            "-e", f"WINSLOW_S3_ENDPOINT={cfg.endpoint_url}",
            "-e", f"WINSLOW_S3_ACCESS_KEY={cfg.access_key}",
            "-e", f"WINSLOW_S3_SECRET_KEY={cfg.secret_key}",
            "-e", f"WINSLOW_S3_BUCKET={cfg.bucket}",
            # What a Nomad stage job's tools task runs: the command, then its arguments.
            pulled["tools"], "winslow", "stage-in", "--workspace", "/alloc/workspace",
            "--inputs", "/alloc/inputs", "--input", "clips/a.txt",
        ],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    assert (node / "inputs" / "clips" / "a.txt").read_bytes() == b"from the pool\n"


@pytest.mark.slow
@pytest.mark.containers
@BUILDS_IMAGES
def test_the_tools_image_is_small_without_the_servers_packages(pulled: dict[str, str]) -> None:
    """Every stage job on Nomad pulls the tools image to each node it lands on: it carries
    the stage tools and leaves out what only the server needs (SeaweedFS alone is 150 MB)."""
    server_only = sorted(runpy.run_path(str(ROOT / "scripts" / "images.py"))["SERVER_ONLY"])
    probe = (
        "import importlib.metadata as m, json, sys\n"
        "found = []\n"
        "for name in sys.argv[1:]:\n"
        "    try: m.version(name)\n"
        "    except m.PackageNotFoundError: continue\n"
        "    found.append(name)\n"
        "print(json.dumps(found))"
    )
    installed = {
        key: json.loads(
            docker("run", "--rm", "--entrypoint", "python", pulled[key], "-c", probe, *server_only)
        )
        for key in ("tools", "service")
    }
    assert installed["tools"] == []
    assert installed["service"] == server_only  # the probe finds them where they are
    size = {
        key: int(docker("image", "inspect", "--format", "{{.Size}}", pulled[key]))
        for key in ("tools", "service")
    }
    assert size["tools"] < size["service"] - 100 * 2**20


@pytest.mark.slow
@pytest.mark.containers
@BUILDS_IMAGES
def test_pulled_service_image_answers_health_and_its_healthcheck_passes(
    pulled: dict[str, str],
) -> None:
    (port,) = pick_ports(1)
    name = f"winslow-test-service-{port}"
    # The image's own HEALTHCHECK command, run every second instead of every 30.
    docker("run", "-d", "--name", name, "-p", f"127.0.0.1:{port}:8080",
           "--health-interval", "1s", "--health-start-period", "1s", pulled["service"])  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        health, status = None, ""
        while time.monotonic() < deadline:
            status = docker("inspect", "--format", "{{.State.Health.Status}}", name).strip()
            try:
                answer = httpx.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=2)
                health = answer.json() if answer.status_code == 200 else None
            except httpx.TransportError:
                health = None
            if health is not None and status == "healthy":
                break
            time.sleep(0.5)
        logs = subprocess.run(["docker", "logs", name], capture_output=True, text=True)
        assert health is not None, logs.stdout[-2000:] + logs.stderr[-2000:]
        assert (health["status"], health["version"]) == ("ok", __version__)
        assert status == "healthy", logs.stderr[-2000:]
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True, check=False)
