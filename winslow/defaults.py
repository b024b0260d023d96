"""Tunable defaults, each with its unit. Settings may override some of them."""

RECONCILE_POLL_SECONDS = 5.0
"""Safety-net poll of the engine, seconds; backend events normally wake it at once."""

LOCAL_STATUS_POLL_SECONDS = 0.2
"""How often the local backend checks adopted (non-child) runs for their exit, seconds."""

LOG_TAIL_LINES = 20
"""Lines of a failed run's log kept as its reason's context."""

PROGRESS_FILE_POLL_SECONDS = 2.0
"""How often the node looks at a stage's progress file for a new value, in seconds."""

KILL_GRACE_SECONDS = 10.0
"""Seconds a stage gets between SIGTERM and SIGKILL when killed."""

MULTIPART_CHUNK_BYTES = 16 * 1024 * 1024
"""Part size of multipart uploads for files up to 160 GiB, bytes (grown for larger files)."""

MULTIPART_MAX_PARTS = 10_000
"""S3's limit on parts per multipart upload."""

TRANSFER_RETRY_DELAYS: tuple[float, ...] = (2, 5, 10, 20)
"""Seconds to wait before each new attempt of a whole transfer (the S3 client already
retries each request); one more attempt than delays."""

TRANSFER_THREADS = 4
"""Parallel parts per file in uploads and downloads."""

NODE_CACHE_MAX_BYTES = 100 * 1024**3
"""Size cap of each node's cache of workspace contents and inputs, bytes (100 GiB)."""

GC_GRACE_SECONDS = 24 * 3600
"""Unreferenced content younger than this is left alone by garbage collection, seconds."""

PENDING_MAX_AGE_SECONDS = 7 * 24 * 3600
"""A stage-out's in-flight record older than this no longer protects content, seconds."""

MAX_PATH_LENGTH = 1024
"""Longest resource or workspace path accepted, characters."""

MAX_CPUS = 1024
"""Largest CPU request a pipeline may state; more is a typo."""

MAX_MEMORY_MB = 16 * 1024 * 1024
"""Largest memory request a pipeline may state (16 TiB), megabytes."""

MAX_GPUS = 64
"""Largest GPU request a pipeline may state."""

MAX_RETRIES = 100
"""Largest retry count a pipeline may state."""

MAX_SWEEP_RUNS = 1000
"""The most combinations one stage's sweep may make; more is a validation error."""

PAGE_SIZE = 100
"""Items a list endpoint gives when the request names no ``limit``."""

MAX_PAGE_SIZE = 1000
"""Most items one page of a list endpoint may hold (``limit``)."""

SSE_HEARTBEAT_SECONDS = 15.0
"""Seconds between keep-alive comments on Server-Sent Event streams."""

USAGE_SAMPLE_SECONDS = 5.0
"""How often the CPU, memory and GPU use of every running run is sampled and kept, seconds."""
