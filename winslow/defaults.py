"""Tunable defaults, each with its unit. Settings may override some of them."""

RECONCILE_POLL_SECONDS = 5.0
"""Safety-net poll of the engine, seconds; backend events normally wake it at once."""

LOCAL_STATUS_POLL_SECONDS = 0.2
"""How often the local backend checks adopted (non-child) runs for their exit, seconds."""

LOG_TAIL_LINES = 20
"""Lines of a failed run's log kept as its reason's context."""

KILL_GRACE_SECONDS = 10.0
"""Seconds a stage gets between SIGTERM and SIGKILL when killed."""

MULTIPART_CHUNK_BYTES = 16 * 1024 * 1024
"""Part size of multipart uploads for files up to 160 GiB, bytes (grown for larger files)."""

MULTIPART_MAX_PARTS = 10_000
"""S3's limit on parts per multipart upload."""

TRANSFER_THREADS = 4
"""Parallel parts per file in uploads and downloads."""

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

SSE_HEARTBEAT_SECONDS = 15.0
"""Seconds between keep-alive comments on Server-Sent Event streams."""
