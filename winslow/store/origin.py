"""Where a command comes from, for the history lines it writes.

The API's audit middleware (``api/audit.py``) sets an ``Origin`` for as long as one
command takes. ``ProjectTransaction.add_event``, the one place history is written, reads
it: each line a command writes says from which address, through what (a console session,
an API token, a trigger token) and under which audit request it came, and the origin
notes which projects got a line, so the middleware knows which command wrote none.
What runs outside a command (the engine's own thread) has no origin.

A context variable carries it: FastAPI runs a route in a worker thread with a copy of the
request's context, so the route sees the origin without any parameter passing through
the routes, the engine's commands and the store.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field

ANONYMOUS = "anonymous"
"""``via`` of a request that showed no valid credentials."""


@dataclass
class Origin:
    """Who a command comes from and from where, as its history lines tell it."""

    address: str
    """The client's address."""
    request: str
    """The id of the command's audit request, which its audit entry carries too."""
    via: Callable[[], str] = lambda: ANONYMOUS
    """``session:<handle>``, ``token:<name>``, ``trigger:<name>`` or ``anonymous``; asked
    when a line is written, since the caller is known only once credentials are checked."""
    written: set[str] = field(default_factory=set)
    """Ids of the projects this command has written history to."""

    def describe(self) -> dict[str, str]:
        """The origin as a history line's ``data["origin"]`` holds it."""
        return {"address": self.address, "via": self.via(), "request": self.request}


_ORIGIN: ContextVar[Origin | None] = ContextVar("winslow_origin", default=None)


def current_origin() -> Origin | None:
    """The origin of the command running in this context, or ``None`` outside one."""
    return _ORIGIN.get()


@contextmanager
def acting_from(origin: Origin) -> Iterator[Origin]:
    """Make ``origin`` the current one until the block ends."""
    token = _ORIGIN.set(origin)
    try:
        yield origin
    finally:
        _ORIGIN.reset(token)
