"""The ``local`` backend: runs stages on this machine, each under a detached runner process.

``LocalBackend`` submits, watches and cancels; ``runner`` is the process that executes one
job and outlives the server; ``jobfiles`` is the job directory both of them read and
write; ``container`` builds ``docker run`` command lines; ``gpus`` finds this node's GPUs;
``usage`` measures what a running stage uses.
"""

from __future__ import annotations

from winslow.backends.local.backend import LocalBackend

__all__ = ["LocalBackend"]
