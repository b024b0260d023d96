"""The ``local`` backend: runs stages on this machine, each under a detached runner process.

``LocalBackend`` submits, watches and cancels; the runner (``winslow.node.runner``)
executes one job and outlives the server, and the job directory of ``winslow.node.jobfiles``
is all the two share. ``gpus`` finds this node's GPUs; ``usage`` measures what a running
stage uses.
"""

from __future__ import annotations

from winslow.backends.local.backend import LocalBackend

__all__ = ["LocalBackend"]
