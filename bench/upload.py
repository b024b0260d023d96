"""Uploading a big file through Winslow's presigned path, against plain boto3, same S3 server.

A SeaweedFS (``weed mini``) and a real ``winslow up`` (a separate process, pointed at that
SeaweedFS) start in a temporary folder. A file of ``--size`` bytes is written there (not
sparse: a 64 MiB random block repeated, every MiB stamped with its own counter, so no two
parts are alike). In the same run it is uploaded ``--rounds`` times each of four ways
(the order reverses every round), and the median times are compared:

- baseline ``boto3``: boto3's ``upload_file`` in this process (multipart, the part size
  Winslow picks, the CLI's number of threads), straight to S3 with the S3 keys;
- ``winslow``: ``winslow.cli.transfer.upload_file`` in this process, what the CLI runs:
  the API creates the upload and hands out presigned part URLs, the parts go in parallel
  to S3 with their Content-MD5, and the API checks every part's MD5 and the size before
  completing. Its throughput against the baseline's is the figure issue 17 measured;
- ``boto3 command`` and ``winslow command``: the same as whole processes, a Python running
  boto3 and the real ``winslow resources upload``, each timed from its start to its exit
  (both pay an interpreter and imports, about 0.25 s each here).

While a command runs, the resident memory of its process (and any children) is sampled
every 0.05 s, and during the Winslow uploads the server's (``winslow up`` alone, and
with its children: the warm runner) every 0.2 s; each upload's CPU seconds are counted
too (a figure the load of other processes on the same cores changes less than time).
Printed: seconds, MB/s (10^6
bytes per second) and CPU seconds of each way, the ratio of Winslow's throughput to
boto3's (target at least 0.9; the commands' ratio next to it), the CLI's peak RSS
against its goal (``threads`` times the part size plus 60 MB: the parts the CLI may have
in flight and the interpreter), boto3's for comparison, the server's peak RSS (target at
most 150 MB, as `bench/memory.py` measures it: the server process) and with its
children, whether all objects have the same multipart ETag (the MD5 of their parts'
MD5s: the same bytes in the same parts), and whether the targets are met; the exit
status is 1 when one is missed.

    python bench/upload.py [--size 4G] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import psutil
from boto3.s3.transfer import TransferConfig

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._common import parse_size, write_file  # noqa: E402
from tests.fixtures.ports import pick_ports  # noqa: E402
from tests.fixtures.server import BIN, Server, _kill_leftovers  # noqa: E402
from winslow import defaults  # noqa: E402
from winslow.cli.client import ApiClient  # noqa: E402
from winslow.cli.transfer import upload_file  # noqa: E402
from winslow.settings import ClientSettings  # noqa: E402
from winslow.storage.objects import choose_part_size  # noqa: E402
from winslow.storage.s3 import S3Config, make_client  # noqa: E402
from winslow.storage.seaweed import SeaweedServer  # noqa: E402

TARGET_RATIO = 0.9
TARGET_RSS_MB = 150.0
CLI_RSS_ALLOWANCE_MB = 60.0
"""What the CLI may hold besides its parts in flight (interpreter, imports), MB."""
RSS_SAMPLE_SECONDS = 0.2
CHILD_RSS_SAMPLE_SECONDS = 0.05
TREE_SCAN_SECONDS = 1.0
BUCKET = "winslow"
BOTO3_CHILD = """
import json, sys
from boto3.s3.transfer import TransferConfig
from winslow.storage.s3 import S3Config, make_client
s3, local, key, part_size, threads = json.loads(sys.argv[1])
config = TransferConfig(
    multipart_threshold=part_size, multipart_chunksize=part_size,
    max_concurrency=threads, use_threads=True,
)
make_client(S3Config(**s3)).upload_file(local, s3["bucket"], key, Config=config)
"""
"""The baseline's process: the same boto3 client Winslow's storage layer builds."""


@dataclass
class ApiServer(Server):
    """``winslow up`` using an S3 server started elsewhere (``s3``) instead of its own."""

    s3: S3Config | None = None

    @property
    def env(self) -> dict[str, str]:
        env = super().env
        assert self.s3 is not None
        env.update(
            WINSLOW_S3_ENDPOINT=self.s3.endpoint_url,
            WINSLOW_S3_ACCESS_KEY=self.s3.access_key,
            WINSLOW_S3_SECRET_KEY=self.s3.secret_key,
            WINSLOW_S3_BUCKET=self.s3.bucket,
        )
        return env


class PeakRss:
    """Samples the resident memory of a process and its children in a thread.

    Finding the children scans every process (milliseconds with a hundred of them), so
    the tree is looked up once a second and its members' memory read every ``every``
    seconds; the scans would otherwise take CPU from the uploads they measure."""

    def __init__(
        self, pid: int, every: float = RSS_SAMPLE_SECONDS, *, children: bool = True
    ) -> None:
        self.process = psutil.Process(pid)
        self.every = every
        self.children = children
        self.peak = 0
        self._tree: list[psutil.Process] = []
        self._tree_at = -1.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def sample(self) -> int:
        if time.monotonic() - self._tree_at >= TREE_SCAN_SECONDS:
            try:
                below = self.process.children(recursive=True) if self.children else []
                self._tree = [self.process, *below]
            except psutil.NoSuchProcess:
                return 0  # it has ended
            self._tree_at = time.monotonic()
        total = 0
        for process in self._tree:
            try:
                total += process.memory_info().rss
            except psutil.NoSuchProcess:
                continue
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.sample())
            self._stop.wait(self.every)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.sample())


def mb_per_s(size: int, seconds: float) -> float:
    return size / seconds / 1e6


def run_timed(command: list[str], env: dict[str, str]) -> tuple[float, float, int]:
    """Run ``command`` to its end; return its seconds, its CPU seconds (user and system,
    less swayed than time by other load on the same cores) and its
    peak RSS (with children)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    with PeakRss(process.pid, CHILD_RSS_SAMPLE_SECONDS) as rss:
        out, err = process.communicate()
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if process.returncode != 0:
        raise SystemExit(f"{command[:3]} failed ({process.returncode}):\n{(out + err).decode()}")
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return seconds, cpu, rss.peak


KINDS = ("boto3", "winslow", "boto3 command", "winslow command")
"""In-process uploads (the issue's throughput measure), then the same as whole processes."""


@dataclass
class Uploads:
    """What every upload of a run shares, and the figures they leave."""

    local: Path
    size: int
    part_size: int
    threads: int
    server: ApiServer
    s3: S3Config
    storage_pid: int

    def __post_init__(self) -> None:
        self.client = make_client(self.s3)
        self.api = ApiClient(ClientSettings(addr=self.server.addr, data_dir=self.server.data_dir))
        self.config = TransferConfig(
            multipart_threshold=self.part_size,
            multipart_chunksize=self.part_size,
            max_concurrency=self.threads,
            use_threads=True,
        )
        self.times: dict[str, list[float]] = {kind: [] for kind in KINDS}
        self.cpus: dict[str, list[float]] = {kind: [] for kind in KINDS}
        self.others: dict[str, list[float]] = {kind: [] for kind in KINDS}
        self.peaks: dict[str, int] = {kind: 0 for kind in (*KINDS, "server", "server tree")}
        self.etags: dict[str, str] = {}

    def run(self, kind: str, round_: int) -> None:
        """Upload the file once the ``kind`` way, keep its figures, check and drop the object."""
        key = f"bench/{kind.replace(' ', '-')}-{round_}.bin"
        assert self.server.process is not None
        others = [psutil.Process(self.server.process.pid), psutil.Process(self.storage_pid)]
        others_before = sum(cpu_seconds(process) for process in others)
        # The server's own memory is what the goal is about; the warm runner, its child,
        # is the node's runner host (on a cluster it runs on each node) and is shown apart.
        with (
            PeakRss(self.server.process.pid, children=False) as server_rss,
            PeakRss(self.server.process.pid) as tree_rss,
        ):
            if kind == "boto3":
                seconds, cpu, peak = in_process(
                    lambda: self.client.upload_file(
                        str(self.local), BUCKET, key, Config=self.config
                    )
                )
            elif kind == "winslow":
                seconds, cpu, peak = in_process(
                    lambda: upload_file(self.api, self.local, key, threads=self.threads)
                )
                key = f"resources/{key}"
            elif kind == "boto3 command":
                spec = [asdict(self.s3), str(self.local), key, self.part_size, self.threads]
                command = [sys.executable, "-c", BOTO3_CHILD, json.dumps(spec)]
                seconds, cpu, peak = run_timed(command, dict(os.environ))
            else:
                command = [str(BIN / "winslow"), "resources", "upload", str(self.local), key]
                seconds, cpu, peak = run_timed(command, self.server.env)
                key = f"resources/{key}"
        if kind.startswith("winslow"):
            self.peaks["server"] = max(self.peaks["server"], server_rss.peak)
            self.peaks["server tree"] = max(self.peaks["server tree"], tree_rss.peak)
        self.times[kind].append(seconds)
        self.cpus[kind].append(cpu)
        self.others[kind].append(sum(cpu_seconds(process) for process in others) - others_before)
        self.peaks[kind] = max(self.peaks[kind], peak)
        head = self.client.head_object(Bucket=BUCKET, Key=key)
        assert head["ContentLength"] == self.size, head
        self.etags[kind] = head["ETag"]
        self.client.delete_object(Bucket=BUCKET, Key=key)


def cpu_seconds(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


def in_process(upload: Callable[[], object]) -> tuple[float, float, int]:
    """Time ``upload`` in this process: seconds, CPU seconds of the process, no RSS."""
    before = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    upload()
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_SELF)
    return seconds, after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime, 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="4G", help="File size, e.g. 512M, 4G (default 4G).")
    parser.add_argument(
        "--rounds", type=int, default=3, help="Uploads of each kind; medians are compared."
    )
    args = parser.parse_args()
    size = parse_size(args.size)

    with tempfile.TemporaryDirectory(prefix="winslow-bench-upload-") as tmp:
        base = Path(tmp)
        local = base / "big.bin"
        started = time.perf_counter()
        write_file(local, size)
        print(f"wrote {size} bytes in {time.perf_counter() - started:.1f} s", file=sys.stderr)

        seaweed = SeaweedServer(base / "s3", bucket=BUCKET)
        s3 = seaweed.start()
        port, s3_port = pick_ports(2)
        server = ApiServer(base / "data", port, s3_port, s3=s3)
        try:
            server.start()
            assert server.process is not None
            os.environ["XDG_CACHE_HOME"] = str(base / "cache")
            idle_rss = PeakRss(server.process.pid, children=False).sample()
            assert seaweed.pid is not None
            uploads = Uploads(
                local,
                size,
                choose_part_size(size),
                defaults.TRANSFER_THREADS,
                server,
                s3,
                seaweed.pid,
            )
            for round_ in range(args.rounds):
                # Alternate who goes first: SeaweedFS gets slower as deleted data piles up.
                for kind in KINDS if round_ % 2 == 0 else KINDS[::-1]:
                    uploads.run(kind, round_)
                print(
                    f"round {round_ + 1}: "
                    + ", ".join(
                        f"{kind} {uploads.times[kind][-1]:.2f} s "
                        f"(CPU {uploads.cpus[kind][-1]:.2f} s, "
                        f"server and storage {uploads.others[kind][-1]:.2f} s)"
                        for kind in KINDS
                    ),
                    file=sys.stderr,
                )
            uploads.api.close()
        finally:
            server.stop()
            _kill_leftovers(server.data_dir)
            seaweed.stop()
    result = report(uploads, args.rounds, idle_rss)
    print(json.dumps(result, indent=2))
    return 0 if result["target_met"] else 1


def report(uploads: Uploads, rounds: int, idle_rss: int) -> dict[str, object]:
    size, part_size, threads = uploads.size, uploads.part_size, uploads.threads
    seconds = {kind: statistics.median(uploads.times[kind]) for kind in KINDS}
    cpu = {kind: round(statistics.median(uploads.cpus[kind]), 2) for kind in KINDS}
    ratio = seconds["boto3"] / seconds["winslow"]
    command_ratio = seconds["boto3 command"] / seconds["winslow command"]
    cli_goal_mb = threads * part_size / 1e6 + CLI_RSS_ALLOWANCE_MB
    cli_mb = uploads.peaks["winslow command"] / 1e6
    server_mb = uploads.peaks["server"] / 1e6
    return {
        "size_bytes": size,
        "part_size_bytes": part_size,
        "threads": threads,
        "rounds": rounds,
        "baseline": "boto3 upload_file (same part size and threads), same SeaweedFS",
        "seconds": {kind: round(value, 2) for kind, value in seconds.items()},
        "MB_per_s": {kind: round(mb_per_s(size, value), 1) for kind, value in seconds.items()},
        "cpu_s": cpu,
        "server_and_storage_cpu_s": {
            kind: round(statistics.median(uploads.others[kind]), 2) for kind in KINDS
        },
        "ratio_winslow_to_boto3": round(ratio, 3),
        "ratio_commands_winslow_to_boto3": round(command_ratio, 3),
        "cli_peak_rss_MB": round(cli_mb, 1),
        "cli_rss_goal_MB": round(cli_goal_mb, 1),
        "cli_rss_goal_met": cli_mb <= cli_goal_mb,
        "boto3_command_peak_rss_MB": round(uploads.peaks["boto3 command"] / 1e6, 1),
        "server_idle_rss_MB": round(idle_rss / 1e6, 1),
        "server_peak_rss_MB": round(server_mb, 1),
        "server_rss_target_met": server_mb <= TARGET_RSS_MB,
        # With its children: the warm runner (the local backend's runner host).
        "server_with_children_peak_rss_MB": round(uploads.peaks["server tree"] / 1e6, 1),
        "same_multipart_etag": len(set(uploads.etags.values())) == 1,
        "target_ratio_at_least": TARGET_RATIO,
        "target_rss_MB_at_most": TARGET_RSS_MB,
        "target_met": ratio >= TARGET_RATIO
        and server_mb <= TARGET_RSS_MB
        and cli_mb <= cli_goal_mb,
    }


if __name__ == "__main__":
    sys.exit(main())
