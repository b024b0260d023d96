"""``SecretWatcher``: read secrets again at an interval and hand changed ones on.

Credentials in Vault rotate (an operator writes a new version, or a rotation job does);
Winslow must pick the new ones up without a restart. The watcher keeps the last values it
handed on, only in memory, reads every watched secret each ``every`` seconds, and calls the
subscribers of each that changed, in the order they subscribed. A subscriber that fails is
logged (by name, never with values) and the change is offered again at the next look, so a
swap that failed half way is retried rather than forgotten. A read that fails keeps the old
values in use: the credentials that work now stay in use until Vault answers again.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping

from winslow.errors import WinslowError

log = logging.getLogger(__name__)

Secret = Mapping[str, str]
Reader = Callable[[str], "dict[str, str] | None"]
Subscriber = Callable[[Secret], None]


def changed_keys(old: Secret | None, new: Secret | None) -> list[str]:
    """Names of the keys whose values differ between two versions of a secret, sorted;
    what may be logged about a rotation."""
    before, after = dict(old or {}), dict(new or {})
    return sorted(key for key in before.keys() | after.keys() if before.get(key) != after.get(key))


class SecretWatcher:
    """Re-reads secrets through ``read`` and tells their subscribers of changes.

    Usage::

        watcher = SecretWatcher(vault.read, every=60)
        watcher.subscribe("s3", {"access_key": ..., ...}, objects_use_keys)
        watcher.start()        # or watcher.check_once() to look now
        ...
        watcher.stop()
    """

    def __init__(self, read: Reader, every: float) -> None:
        self._read = read
        self.every = every
        self._known: dict[str, Secret] = {}
        self._subscribers: dict[str, list[Subscriber]] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._checking = threading.Lock()

    def subscribe(self, name: str, current: Secret, callback: Subscriber) -> None:
        """Call ``callback`` with the new values whenever the secret ``name`` changes from
        ``current`` (what is in use now)."""
        self._known.setdefault(name, dict(current))
        self._subscribers.setdefault(name, []).append(callback)

    def check_once(self) -> list[str]:
        """Read every watched secret now; return the names of those handed on as changed."""
        handed: list[str] = []
        with self._checking:
            for name, callbacks in self._subscribers.items():
                try:
                    new = self._read(name)
                except WinslowError as exc:
                    log.warning(
                        "secrets: cannot read %s again; the current one stays in use: %s",
                        name,
                        exc.message,
                    )
                    continue
                old = self._known.get(name)
                if new is None or new == old:
                    continue  # a deleted secret leaves the credentials in use as they are
                keys = changed_keys(old, new)
                if self._hand_on(name, new, callbacks):
                    self._known[name] = dict(new)
                    handed.append(name)
                    log.info("secrets: %s rotated (%s changed); now in use", name, ", ".join(keys))
        return handed

    def _hand_on(self, name: str, new: Secret, callbacks: list[Subscriber]) -> bool:
        for callback in callbacks:
            try:
                callback(new)
            except Exception as exc:
                # Our own messages never hold values; another library's might quote them.
                why = exc.message if isinstance(exc, WinslowError) else type(exc).__name__
                log.error(
                    "secrets: the new %s could not be put in use (%s); will try again in %g s",
                    name,
                    why,
                    self.every,
                )
                return False
        return True

    def start(self) -> None:
        """Look every ``every`` seconds in a daemon thread until ``stop``."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="secret-watcher", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self.every):
            try:
                self.check_once()
            except Exception:
                log.exception("secrets: the rotation watcher failed; it looks again later")

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None
