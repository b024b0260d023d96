"""What every identity adapter returns and raises."""

from __future__ import annotations

from winslow.core.access import ExternalIdentity as ExternalIdentity
from winslow.errors import WinslowError


class IdentityUnavailable(WinslowError):
    """The other system cannot be reached or answered nonsense (not: wrong password);
    the API answers 503."""

    code = "identity_unavailable"
