"""`make demo`: the embedded all-in-one Winslow runs the traffic example end to end.

Everything goes through the real pieces a user would touch: `winslow up` (server,
engine, local backend, SeaweedFS), then the `winslow` CLI over HTTP: apply the pipeline,
upload the video into the resource pool, create and start the project, stop at the
review gate, resume, and fetch the results. The demo's state lives in ./demo-data and
is started fresh each time.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "traffic"
DATA = ROOT / "demo-data"
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def say(text: str) -> None:
    print(f"\n==> {text}", flush=True)


def winslow(env: dict[str, str], *args: str, capture: bool = False) -> str:
    command = [str(BIN / "winslow"), *args]
    print("$ winslow " + " ".join(args), flush=True)
    result = subprocess.run(command, env=env, text=True, capture_output=capture)
    if result.returncode != 0:
        if capture:
            sys.stderr.write(result.stderr)
        raise SystemExit(f"demo: `winslow {' '.join(args)}` failed")
    return result.stdout if capture else ""


def wait_until_settled(env: dict[str, str], expected: str) -> None:
    """`winslow project wait` returns once the project needs a person or is done: exit 0
    succeeded, 1 failed, 3 a person is needed; each prints the project."""
    print("$ winslow project wait ulm-demo --timeout 300 --json", flush=True)
    command = [str(BIN / "winslow"), "project", "wait", "ulm-demo", "--timeout", "300", "--json"]
    waited = subprocess.run(command, env=env, text=True, capture_output=True)
    if waited.returncode not in (0, 1, 3):
        sys.stderr.write(waited.stderr)
        raise SystemExit("demo: `winslow project wait` gave up")
    state = json.loads(waited.stdout)["state"]
    if state != expected:
        winslow(env, "project", "show", "ulm-demo")
        raise SystemExit(f"demo: the project is {state}, expected {expected}; see above")


def main() -> None:
    if DATA.exists():
        shutil.rmtree(DATA)
    DATA.mkdir()
    port = int(os.environ.get("WINSLOW_PORT") or free_port())
    env = {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "WINSLOW_DATA_DIR": str(DATA / "server"),
        "WINSLOW_PORT": str(port),
        "WINSLOW_S3_PORT": str(free_port()),
        "WINSLOW_ADDR": f"http://127.0.0.1:{port}",
    }
    env.pop("WINSLOW_TOKEN", None)

    say("generating a synthetic 4-lane road video with known vehicles and speeds")
    video = DATA / "ulm-demo.mp4"
    subprocess.run(
        [
            sys.executable,
            str(EXAMPLE / "generate.py"),
            str(video),
            "--truth",
            str(DATA / "truth.json"),
        ],
        check=True,
    )

    say("starting the all-in-one Winslow server (`winslow up`)")
    server_log = (DATA / "server.log").open("w")
    server = subprocess.Popen(
        [str(BIN / "winslow"), "up"],
        env=env,
        stdout=server_log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=1)
                if health.status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                print((DATA / "server.log").read_text(), file=sys.stderr)
                raise SystemExit("demo: the server did not come up; its log is above")
            time.sleep(0.3)
        print(f"server up at http://127.0.0.1:{port} (log: {DATA / 'server.log'})")

        say("applying the pipeline and uploading the video into the resource pool")
        winslow(env, "pipeline", "validate", str(EXAMPLE / "pipeline.yaml"))
        winslow(env, "pipeline", "apply", str(EXAMPLE / "pipeline.yaml"))
        winslow(env, "resources", "upload", str(video), "videos/ulm-demo.mp4")
        winslow(env, "resources", "ls", "videos")

        say("creating and starting the project")
        winslow(
            env,
            "project",
            "create",
            "ulm-demo",
            "--pipeline",
            "traffic",
            "--label",
            "demo",
            "--var",
            "INPUT_VIDEO=videos/ulm-demo.mp4",
            "--var",
            f"EXAMPLES_DIR={EXAMPLE}",
            "--start",
        )

        say("waiting for the review gate")
        wait_until_settled(env, "awaiting_input")
        winslow(env, "project", "show", "ulm-demo")
        winslow(env, "logs", "ulm-demo", "--stage", "detect")
        print("A person would now look at detections.csv in the detect run's workspace:")
        winslow(env, "workspace", "ls", "ulm-demo")

        say("the detections look right: resuming past the gate")
        winslow(env, "project", "resume", "ulm-demo")
        wait_until_settled(env, "succeeded")
        winslow(env, "project", "show", "ulm-demo")
        say("the speeds analyze printed, as a series of its run (its log parser)")
        winslow(env, "project", "series", "ulm-demo", "--stage", "analyze")

        say("results")
        results = DATA / "results"
        winslow(
            env, "workspace", "download", "ulm-demo", "summary.json", str(results / "summary.json")
        )
        winslow(
            env, "workspace", "download", "ulm-demo", "heatmap.png", str(results / "heatmap.png")
        )
        summary = json.loads((results / "summary.json").read_text())
        truth = json.loads((DATA / "truth.json").read_text())
        brief = {k: v for k, v in summary.items() if k != "per_vehicle"}
        print(json.dumps(brief, indent=2))
        print(
            f"\nvehicles counted: {summary.get('vehicles')} (the generator drew "
            f"{len(truth.get('vehicles', []))})"
        )
        print(f"heat map: {results / 'heatmap.png'}")
        print(f"summary:  {results / 'summary.json'}")
        print(
            f"the console: http://127.0.0.1:{port}/ and the API docs at /docs, while the "
            f"server runs (`winslow up` with WINSLOW_DATA_DIR={DATA / 'server'}); sign in "
            f"with the token in {DATA / 'server' / 'admin-token'}"
        )
    finally:
        say("stopping the server")
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        server_log.close()


if __name__ == "__main__":
    main()
