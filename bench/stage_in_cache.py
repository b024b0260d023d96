"""A second stage-in of a ``--size`` resource on the same node, against the first.

A SeaweedFS (``weed mini``) starts in a temporary folder and a file of ``--size`` bytes
(random, every MiB stamped) is uploaded into the resource pool as
``resources/videos/big.mp4`` (not timed). Then two jobs on the same node stage it in, as
the runner does (``stagetools.stage_in`` with ``input_paths=("videos/big.mp4",)`` and
one node cache folder), each into a folder of its own:

- the first fetches the file into the node cache and hard-links it into its inputs;
- the second should fetch nothing: one HeadObject to see that the pool file is
  unchanged, then a hard link of the cache entry (same inode).

Bytes fetched are what GetObject answered with, counted by a boto3 hook on the store's
client (``stage_in`` builds its own ``NodeCache``, so its counter is not reachable).

Printed (JSON on stdout): both times, the ratio first / second, the bytes each fetched,
whether the second input is the cache entry's inode, and whether the target is met (the
second fetched 0 bytes and is a hard link of the cache entry). Exit status 1 otherwise.

    python bench/stage_in_cache.py [--size 4G]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._common import ByteMeter, EventClock, parse_size, seaweed_store, write_file  # noqa: E402
from winslow.node import stagetools  # noqa: E402
from winslow.storage import keys  # noqa: E402
from winslow.storage.objects import ObjectStore  # noqa: E402

RESOURCE = "videos/big.mp4"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="4G", help="Resource size, e.g. 512M, 4G (default 4G).")
    args = parser.parse_args()
    size = parse_size(args.size)
    if size <= 0:
        parser.error("--size must be positive")

    with tempfile.TemporaryDirectory(prefix="winslow-bench-stagein-") as tmp:
        base = Path(tmp)
        source = base / "source" / "big.mp4"
        started = time.perf_counter()
        write_file(source, size)
        print(f"wrote {size} bytes in {time.perf_counter() - started:.1f} s", file=sys.stderr)
        cache_dir = base / "node" / "cache"

        with seaweed_store(base / "s3") as store:
            store.upload_file(source, keys.resource_key(RESOURCE))
            source.unlink()  # only the pool's copy is needed now; saves the disk
            meter = ByteMeter(store)

            def factory() -> ObjectStore:
                return store

            def stage_in(job: str) -> tuple[float, int, dict[str, int], Path]:
                meter.reset()
                folder = base / "node" / "jobs" / job
                started = time.perf_counter()
                stagetools.stage_in(
                    folder / "workspace",
                    folder / "inputs",
                    sources=(),
                    input_paths=(RESOURCE,),
                    store=factory,
                    event=EventClock(),
                    cache_dir=cache_dir,
                )
                seconds = time.perf_counter() - started
                return seconds, meter.received_bytes(), dict(meter.requests), folder / "inputs"

            first_s, first_bytes, first_requests, first_inputs = stage_in("job-1")
            second_s, second_bytes, second_requests, second_inputs = stage_in("job-2")

            entry = cache_dir / "resources" / RESOURCE
            entry_st = entry.stat()
            first_st = (first_inputs / RESOURCE).stat()
            second_st = (second_inputs / RESOURCE).stat()
            pool_size = store.head(keys.resource_key(RESOURCE)).size

    second_is_link = (second_st.st_dev, second_st.st_ino) == (entry_st.st_dev, entry_st.st_ino)
    first_is_link = (first_st.st_dev, first_st.st_ino) == (entry_st.st_dev, entry_st.st_ino)
    target_met = second_bytes == 0 and second_is_link and second_st.st_size == size
    result = {
        "size_bytes": size,
        "pool_object_size_bytes": pool_size,
        "baseline": "first stage-in of the same file on the same node (empty node cache)",
        "first_stage_in_s": round(first_s, 3),
        "first_fetched_bytes": first_bytes,
        "first_MB_per_s": round(size / first_s / 1e6, 1),
        "first_requests": first_requests,
        "first_input_is_cache_entry": first_is_link,
        "second_stage_in_s": round(second_s, 4),
        "second_fetched_bytes": second_bytes,
        "second_requests": second_requests,
        "second_input_is_cache_entry": second_is_link,
        "cache_entry_links": entry_st.st_nlink,
        "ratio_first_to_second": round(first_s / second_s, 1),
        "target_second_fetched_bytes": 0,
        "target_met": target_met,
    }
    print(json.dumps(result, indent=2))
    return 0 if target_met else 1


if __name__ == "__main__":
    sys.exit(main())
