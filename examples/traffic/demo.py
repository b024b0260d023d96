"""`make demo`: the embedded all-in-one Winslow runs the traffic example end to end.

Everything goes through the real pieces a user would touch: `winslow up` (server,
engine, local backend, SeaweedFS), then the `winslow` CLI over HTTP: apply the pipeline,
upload the video into the resource pool, create and start the project, stop at the
review gate, answer its questions while resuming, and fetch the results. The demo's state
lives in ./demo-data and is started fresh each time.

At the end the server keeps running, with the demo's project in the console, until
Ctrl-C; where nobody can press it (no terminal) it stops, and `make console`
(`demo.py --console`) serves ./demo-data again. The console's address and the sign-in
token come last.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "traffic"
DATA = ROOT / "demo-data"
BIN = Path(sys.executable).parent
CONSOLE_PORT = 8080
"""Where `make console` serves the demo's data unless WINSLOW_PORT says otherwise."""


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


def speed_rows(truth: dict[str, Any], summary: dict[str, Any]) -> list[dict[str, Any]]:
    """Pair every vehicle the generator drew with the track analyze measured for it.

    A track matches a vehicle when it goes the same way, overlaps the frames the vehicle
    is visible in, and runs closest to its lane's centre line; each track is used once.
    Vehicles no track matches get ``measured_kmh`` None.
    """
    tracks = list(summary.get("per_vehicle") or [])
    rows = []
    for vehicle in sorted(truth.get("vehicles") or [], key=lambda v: v["entry_frame"]):

        def overlap(track: dict[str, Any], v: dict[str, Any] = vehicle) -> int:
            first = max(track["first_frame"], v["entry_frame"])
            return min(track["last_frame"], v["exit_frame"]) - first

        candidates = [
            t for t in tracks if t.get("direction") == vehicle["direction"] and overlap(t) > 0
        ]
        best = min(candidates, key=lambda t: abs(t["mean_cy"] - vehicle["center_y"]), default=None)
        if best is not None:
            tracks.remove(best)
        rows.append(
            {
                "vehicle": vehicle["id"],
                "lane": vehicle["lane"],
                "direction": vehicle["direction"],
                "drawn_kmh": vehicle["speed_kmh"],
                "measured_kmh": best["speed_kmh"] if best is not None else None,
            }
        )
    return rows


def print_speeds(rows: list[dict[str, Any]]) -> None:
    print(
        f"{'vehicle':>7} {'lane':>4} {'direction':<9} {'drawn':>10} {'measured':>10} {'error':>7}"
    )
    for row in rows:
        drawn, measured = row["drawn_kmh"], row["measured_kmh"]
        shown = f"{measured:.1f} km/h" if measured is not None else "not found"
        error = f"{100 * (measured - drawn) / drawn:+.1f}%" if measured is not None else ""
        print(
            f"{row['vehicle']:>7} {row['lane']:>4} {row['direction']:<9} "
            f"{drawn:>5.1f} km/h {shown:>10} {error:>7}"
        )


def demo_env(port: int) -> dict[str, str]:
    env = {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "WINSLOW_DATA_DIR": str(DATA / "server"),
        "WINSLOW_PORT": str(port),
        "WINSLOW_S3_PORT": str(free_port()),
        "WINSLOW_ADDR": f"http://127.0.0.1:{port}",
    }
    env.pop("WINSLOW_TOKEN", None)
    return env


def start_server(env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    """Start `winslow up` on ./demo-data and return once it answers."""
    with (DATA / "server.log").open("a") as server_log:
        server = subprocess.Popen(
            [str(BIN / "winslow"), "up"],
            env=env,
            stdout=server_log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + 60
    try:
        while True:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=1)
                if health.status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                print((DATA / "server.log").read_text()[-5000:], file=sys.stderr)
                raise SystemExit("demo: the server did not come up; its log is above")
            time.sleep(0.3)
    except BaseException:
        # Its own session keeps Ctrl-C from reaching the server: a Ctrl-C while it starts
        # would otherwise leave it, and its SeaweedFS, holding the port.
        stop_server(server)
        raise
    print(f"server up at http://127.0.0.1:{port} (log: {DATA / 'server.log'})")
    return server


def stop_server(server: subprocess.Popen[bytes]) -> None:
    if server.poll() is not None:
        return
    server.send_signal(signal.SIGINT)
    try:
        server.wait(timeout=20)
    except subprocess.TimeoutExpired:
        server.kill()


def console_note(port: int) -> str:
    token = (DATA / "server" / "admin-token").read_text().strip()
    return (
        f"the console: http://127.0.0.1:{port}/ (API docs at /docs)\n"
        f"sign in with this token: {token}"
    )


def serve_until_interrupted(server: subprocess.Popen[bytes], port: int) -> None:
    """Keep the server up for a person to look around; Ctrl-C stops it."""
    say("the server keeps running with the demo's project; Ctrl-C stops it")
    print(console_note(port), flush=True)
    try:
        server.wait()
    except KeyboardInterrupt:
        print()
    say("stopping the server")
    stop_server(server)


def serve_again() -> None:
    """`make console`: serve the data of the last `make demo` again."""
    if not (DATA / "server" / "admin-token").exists():
        raise SystemExit("demo: no demo data in ./demo-data yet; run `make demo` first")
    port = int(os.environ.get("WINSLOW_PORT") or CONSOLE_PORT)
    server = start_server(demo_env(port), port)
    serve_until_interrupted(server, port)


def main() -> None:
    parser = argparse.ArgumentParser(description="The traffic example, end to end.")
    parser.add_argument(
        "--console", action="store_true", help="serve ./demo-data again (make console)"
    )
    if parser.parse_args().console:
        serve_again()
        return
    if DATA.exists():
        shutil.rmtree(DATA)
    DATA.mkdir()
    port = int(os.environ.get("WINSLOW_PORT") or free_port())
    env = demo_env(port)

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
    server = start_server(env, port)
    try:
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

        say("the detections look right: answering the gate's questions and going on")
        winslow(
            env,
            "project",
            "resume",
            "ulm-demo",
            "--set",
            "MIN_TRACK_FRAMES=8",
            "--set",
            "TRACK_GATE=30",
        )
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
            f"{len(truth.get('vehicles', []))}); their speeds, drawn and measured:"
        )
        print_speeds(speed_rows(truth, summary))
        print(f"heat map: {results / 'heatmap.png'}")
        print(f"summary:  {results / 'summary.json'}")
        if sys.stdin.isatty():
            serve_until_interrupted(server, port)
            return
    except BaseException:
        stop_server(server)
        raise
    say("stopping the server (no terminal to keep it for); `make console` serves it again")
    stop_server(server)
    again = int(os.environ.get("WINSLOW_PORT") or CONSOLE_PORT)
    print(console_note(again).replace("the console:", "with `make console`, the console:"))


if __name__ == "__main__":
    main()
