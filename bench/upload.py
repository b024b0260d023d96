"""Uploading a big file through Winslow's presigned path, against plain boto3, same S3 server.

A SeaweedFS (``weed mini``) and a real ``winslow up`` (a separate process, pointed at that
SeaweedFS) start in a temporary folder. A file of ``--size`` bytes is written there (not
sparse: a 64 MiB random block repeated, every MiB stamped with its own counter, so no two
parts are alike). In the same run it is uploaded ``--rounds`` times each way (who goes
first alternates), and the median times are compared:

- baseline: boto3's ``upload_file`` (multipart, the part size Winslow picks, the same
  number of threads), straight to S3 with the S3 keys;
- Winslow: ``winslow.cli.transfer.upload_file``, what ``winslow resources upload`` runs:
  the API creates the upload and hands out presigned part URLs, the parts go in parallel
  to S3 with their Content-MD5, and the API checks every part's MD5 and the size before
  completing.

While the Winslow upload runs, the server's resident memory (the ``winslow up`` process
and any children) is sampled every 0.2 s. Printed: seconds and MB/s (10^6 bytes per
second) of each, the ratio of Winslow's throughput to boto3's (target at least 0.9), the
server's peak RSS (target at most 150 MB), whether both objects have the same multipart
ETag (the MD5 of their parts' MD5s: the same bytes in the same parts), and whether the
targets are met; the exit status is 1 when one is missed.

    python bench/upload.py [--size 4G] [--threads 4] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import psutil
from boto3.s3.transfer import TransferConfig

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._common import parse_size, write_file  # noqa: E402
from tests.fixtures.server import Server, _kill_leftovers  # noqa: E402
from winslow import defaults  # noqa: E402
from winslow.cli.client import ApiClient  # noqa: E402
from winslow.cli.transfer import upload_file  # noqa: E402
from winslow.settings import ClientSettings  # noqa: E402
from winslow.storage.objects import choose_part_size  # noqa: E402
from winslow.storage.s3 import S3Config, make_client  # noqa: E402
from winslow.storage.seaweed import SeaweedServer, free_ports  # noqa: E402

TARGET_RATIO = 0.9
TARGET_RSS_MB = 150.0
RSS_SAMPLE_SECONDS = 0.2
BUCKET = "winslow"


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
    """Samples the resident memory of a process and its children in a thread."""

    def __init__(self, pid: int) -> None:
        self.process = psutil.Process(pid)
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def sample(self) -> int:
        total = 0
        for process in [self.process, *self.process.children(recursive=True)]:
            try:
                total += process.memory_info().rss
            except psutil.NoSuchProcess:
                continue
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.sample())
            self._stop.wait(RSS_SAMPLE_SECONDS)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.sample())


def mb_per_s(size: int, seconds: float) -> float:
    return size / seconds / 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="4G", help="File size, e.g. 512M, 4G (default 4G).")
    parser.add_argument("--threads", type=int, default=defaults.TRANSFER_THREADS)
    parser.add_argument(
        "--rounds", type=int, default=3, help="Uploads of each kind; medians are compared."
    )
    args = parser.parse_args()
    size = parse_size(args.size)
    part_size = choose_part_size(size)

    with tempfile.TemporaryDirectory(prefix="winslow-bench-upload-") as tmp:
        base = Path(tmp)
        local = base / "big.bin"
        started = time.perf_counter()
        write_file(local, size)
        print(f"wrote {size} bytes in {time.perf_counter() - started:.1f} s", file=sys.stderr)

        seaweed = SeaweedServer(base / "s3", bucket=BUCKET)
        s3 = seaweed.start()
        port, s3_port = free_ports(2)
        server = ApiServer(base / "data", port, s3_port, s3=s3)
        try:
            server.start()
            assert server.process is not None
            os.environ["XDG_CACHE_HOME"] = str(base / "cache")
            api = ApiClient(ClientSettings(addr=server.addr, data_dir=server.data_dir))
            client = make_client(s3)
            config = TransferConfig(
                multipart_threshold=part_size,
                multipart_chunksize=part_size,
                max_concurrency=args.threads,
                use_threads=True,
            )
            idle_rss = PeakRss(server.process.pid).sample()
            boto3_times: list[float] = []
            winslow_times: list[float] = []
            peak = 0
            etags: dict[str, str] = {}
            for round_ in range(args.rounds):
                # Alternate who goes first: SeaweedFS gets slower as deleted data piles up.
                order = ("boto3", "winslow") if round_ % 2 == 0 else ("winslow", "boto3")
                for kind in order:
                    if kind == "boto3":
                        key = f"bench/boto3-{round_}.bin"
                        t0 = time.perf_counter()
                        client.upload_file(str(local), BUCKET, key, Config=config)
                        boto3_times.append(time.perf_counter() - t0)
                    else:
                        path = f"bench/winslow-{round_}.bin"
                        with PeakRss(server.process.pid) as rss:
                            t0 = time.perf_counter()
                            result = upload_file(api, local, path, threads=args.threads)
                            winslow_times.append(time.perf_counter() - t0)
                        peak = max(peak, rss.peak)
                        assert result["size"] == size, result
                        key = f"resources/{path}"
                    etags[kind] = client.head_object(Bucket=BUCKET, Key=key)["ETag"]
                    client.delete_object(Bucket=BUCKET, Key=key)
                print(
                    f"round {round_ + 1}: boto3 {boto3_times[-1]:.2f} s, "
                    f"winslow {winslow_times[-1]:.2f} s",
                    file=sys.stderr,
                )
            api.close()
        finally:
            server.stop()
            _kill_leftovers(server.data_dir)
            seaweed.stop()

    boto3_s = statistics.median(boto3_times)
    winslow_s = statistics.median(winslow_times)
    ratio = mb_per_s(size, winslow_s) / mb_per_s(size, boto3_s)
    peak_mb = peak / 1e6
    result_json = {
        "size_bytes": size,
        "part_size_bytes": part_size,
        "threads": args.threads,
        "rounds": args.rounds,
        "baseline": "boto3 upload_file (multipart, same part size and threads), same SeaweedFS",
        "boto3_s": round(boto3_s, 2),
        "boto3_MB_per_s": round(mb_per_s(size, boto3_s), 1),
        "winslow_s": round(winslow_s, 2),
        "winslow_MB_per_s": round(mb_per_s(size, winslow_s), 1),
        "ratio_winslow_to_boto3": round(ratio, 3),
        "server_idle_rss_MB": round(idle_rss / 1e6, 1),
        "server_peak_rss_MB": round(peak_mb, 1),
        "same_multipart_etag": etags["boto3"] == etags["winslow"],
        "target_ratio_at_least": TARGET_RATIO,
        "target_rss_MB_at_most": TARGET_RSS_MB,
        "target_met": ratio >= TARGET_RATIO and peak_mb <= TARGET_RSS_MB,
    }
    print(json.dumps(result_json, indent=2))
    return 0 if result_json["target_met"] else 1


if __name__ == "__main__":
    sys.exit(main())
