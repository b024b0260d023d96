"""Tunable defaults, each with its unit. Settings may override some of them."""

RECONCILE_POLL_SECONDS = 5.0
"""Safety-net poll of the engine, seconds; backend events normally wake it at once."""

PLACEMENT_TIMEOUT_SECONDS = 600
"""How long a run a backend that places runs itself (Nomad) has not placed may wait before
it fails, when no node it knows could ever hold it, seconds; nodes may join meanwhile."""

LOCAL_STATUS_POLL_SECONDS = 0.2
"""How often the local backend checks adopted (non-child) runs for their exit, seconds."""

LOG_TAIL_LINES = 20
"""Lines of a failed run's log kept as its reason's context."""

PROGRESS_FILE_POLL_SECONDS = 2.0
"""How often the node looks at a stage's progress file for a new value, in seconds."""

KILL_GRACE_SECONDS = 10.0
"""Seconds a stage gets between SIGTERM and SIGKILL when killed."""

FOLLOW_POLL_SECONDS = 0.25
"""How often ``winslow stage-follow`` looks for new output of a container stage on Nomad,
seconds: the delay before a line shows in the live log."""

FOLLOW_DRAIN_SECONDS = 3.0
"""How long ``stage-follow`` goes on reading after Nomad told it to stop, at most, seconds;
below the tools' kill timeout. Whatever is left then, stage-out adds."""

FOLLOW_QUIET_SECONDS = 0.3
"""How long a container stage's output files must stay unchanged before ``stage-follow``
takes them as complete, seconds; above Nomad's logmon flush interval (100 ms)."""

MULTIPART_CHUNK_BYTES = 16 * 1024 * 1024
"""Part size of multipart uploads for files up to 160 GiB, bytes (grown for larger files)."""

MULTIPART_MAX_PARTS = 10_000
"""S3's limit on parts per multipart upload."""

TRANSFER_RETRY_DELAYS: tuple[float, ...] = (2, 5, 10, 20)
"""Seconds to wait before each new attempt of a whole transfer (the S3 client already
retries each request); one more attempt than delays."""

CHECKPOINT_EVERY_SECONDS = 600
"""Default of a stage's ``checkpoint.every``: the node publishes the checkpoint folder at
most this often, seconds."""

INFRASTRUCTURE_EXIT_CODE = 75
"""``winslow stage-in``'s exit status when object storage or the node failed it after its
retries (``EX_TEMPFAIL``), as opposed to 1 for the pipeline's mistake (a missing input):
the Nomad backend reports the first as lost, the second as failed."""

CHECKPOINT_WAIT_SECONDS = 600.0
"""How long ``winslow checkpoint`` waits for the node to publish, seconds."""

TRANSFER_THREADS = 4
"""Parallel parts per file in uploads and downloads."""

CLI_RETRY_SECONDS = 60.0
"""How long the CLI keeps repeating an idempotent API call while the server does not
answer (connection refused or lost, 502, 503, 504), seconds; 0 turns retries off."""

CLI_RETRY_BACKOFF: tuple[float, ...] = (1.0, 2.0, 4.0, 8.0, 15.0)
"""Pauses between the CLI's attempts of one call, seconds, before jitter; the last repeats
until ``CLI_RETRY_SECONDS`` are spent."""

MULTIPART_GRACE_SECONDS = 24 * 3600
"""An unfinished multipart upload with no new part for this long is abandoned, and
garbage collection aborts it, seconds."""

NODE_CACHE_MAX_BYTES = 100 * 1024**3
"""Size cap of each node's cache of workspace contents and inputs, bytes (100 GiB)."""

GC_GRACE_SECONDS = 24 * 3600
"""Unreferenced content younger than this is left alone by garbage collection, seconds."""

PENDING_MAX_AGE_SECONDS = 7 * 24 * 3600
"""A stage-out's in-flight record older than this no longer protects content, seconds."""

MAX_PATH_LENGTH = 1024
"""Longest resource or workspace path accepted, characters."""

MAX_KEY_BYTES = 1024
"""Longest object key, bytes of UTF-8: S3's limit (a path's prefix in the bucket counts)."""

MAX_NAME_BYTES = 255
"""Longest file or folder name in a path, bytes of UTF-8: what file systems (and SeaweedFS's
filer) take, so a stage can write the file on its node."""

MAX_BODY_BYTES = 1024 * 1024
"""Largest request body the API reads, bytes (1 MiB); ``WINSLOW_MAX_BODY_BYTES``."""

MAX_PIPELINE_BYTES = 2 * 1024 * 1024
"""Largest body of the routes that take pipeline text, bytes (2 MiB);
``WINSLOW_MAX_PIPELINE_BYTES``. A pipeline of 200 stages is some 50 KiB."""

UPLOAD_COMPLETE_BODY_BYTES = 2 * 1024 * 1024
"""Largest body completing an upload takes at least, bytes (2 MiB): the MD5s of 10,000 parts
are some 1 MiB of JSON."""

MAX_VARIABLES = 256
"""Most variables one project (or one run's overrides) may set."""

MAX_VARIABLE_BYTES = 32 * 1024
"""Longest value of one variable, bytes of UTF-8 (32 KiB); a stage sees it in its
environment, where Linux takes at most 128 KiB per entry."""

MAX_VARIABLES_BYTES = 256 * 1024
"""Most bytes all of a project's variables may hold together, names and values (256 KiB);
they are listed with every project and sit in every stage's environment."""

MAX_LABELS = 64
"""Most labels one project may carry."""

MAX_TEXT_LENGTH = 2000
"""Longest free text the API takes (a comment, a note), characters."""

MAX_GC_GRACE_SECONDS = 100 * 365 * 24 * 3600
"""Longest grace period garbage collection takes, seconds (100 years: keep everything)."""

MAX_ID = 2**63 - 1
"""Largest run ID the API takes: SQL's BIGINT, so a lookup never overflows."""

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

SSE_BUFFER = 256
"""Changes a live stream holds for a client that reads slower than projects change; past
that it drops them and reads the store afresh (a resync), so memory stays bounded."""

SSE_SAFETY_SECONDS = 5.0
"""How often the live streams' publisher looks for changes nobody published (another
server on the same database), seconds."""

SSE_POLL_SECONDS = 0.25
"""How often a run's log watcher asks the backend whether the log grew, and how often a
stream reads the store with pushed updates off (``WINSLOW_SSE_PUSH=false``), seconds."""

USAGE_SAMPLE_SECONDS = 5.0
"""How often the CPU, memory and GPU use of every running run is sampled and kept, seconds."""

TELEMETRY_SAMPLE_SECONDS = 5.0
"""How often every node's CPU, memory, disk, network and GPUs are sampled, seconds."""

TELEMETRY_ROLLUP_SECONDS = 60.0
"""How often node samples are rolled up into coarser means and pruned, seconds."""

SESSION_MAX_AGE_SECONDS = 14 * 24 * 3600
"""How long a console session lasts at most from sign-in, seconds (14 days); the server
ends it then, whatever the browser's cookie says."""

SESSION_IDLE_SECONDS = 3 * 24 * 3600
"""A console session unused this long ends, seconds (3 days: a weekend away keeps it)."""

SESSION_TOUCH_SECONDS = 60.0
"""How often a session's "last seen" is written at most, seconds: a page that polls does
not write to the database on every request."""

SQLITE_CACHE_KIB = 256
"""SQLite page cache of each pooled connection, KiB (SQLite's own default is 2,000): the
server's memory then stays flat as the database grows."""

OIDC_DISCOVERY_SECONDS = 3600.0
"""How long an OpenID provider's discovery document is kept before it is read again,
seconds; its signing keys are read again at once when a token names an unknown key."""

OIDC_ATTEMPT_SECONDS = 600
"""How long a sign-in through an OpenID provider may take from the button to the way
back, seconds (the cookie that remembers it lives this long)."""
