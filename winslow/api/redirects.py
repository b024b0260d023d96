"""Where the console may send a person after signing in: a path of this server, nothing else.

``/signin?next=...`` carries the page a person asked for. A check such as "starts with
``/`` but not ``//``" is not enough, because a browser reads the URL by the WHATWG URL
Standard (https://url.spec.whatwg.org/), not by eye: it drops tabs and newlines anywhere,
strips leading and trailing spaces and control characters, and in an ``http(s)`` URL
takes ``\\`` for ``/``. So ``/\\evil.example/x`` (``/%5Cevil.example/x`` in a query string),
``\\/evil.example``, ``/\\t/evil.example`` and `` //evil.example`` all lead to another host.

``same_origin_path`` therefore parses ``next`` the way the standard parses a URL relative
to a page of this server, and keeps it only when that can only land on this server: a
path-absolute URL (one slash, then no second slash or backslash), with its dot segments
resolved and its characters percent-encoded as the standard does. The path it returns
starts with exactly one ``/`` followed by neither ``/`` nor ``\\`` and holds no backslash,
space or control character in the path, so any browser resolves it on this origin;
everything else becomes ``/``.
"""

from __future__ import annotations

import re
from urllib.parse import quote

HOME = "/"
"""Where a person goes when ``next`` is missing or could lead elsewhere."""

_C0_OR_SPACE = "".join(chr(code) for code in range(0x21))
"""What the standard strips from both ends of a URL: C0 controls and space."""

_TAB_OR_NEWLINE = str.maketrans("", "", "\t\n\r")
"""What the standard removes from anywhere in a URL."""

_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+\-.]*:")
"""A URL that opens so has a scheme of its own (``https:``, ``javascript:``...)."""

_SURROGATE = re.compile("[\ud800-\udfff]")

_PRINTABLE = "".join(chr(code) for code in range(0x21, 0x7F))


def _keep(encode: str) -> str:
    """The printable ASCII characters outside ``encode``: what stays as it is."""
    return "".join(ch for ch in _PRINTABLE if ch not in encode)


_PATH_KEEP = _keep('"#<>?`{}')
_QUERY_KEEP = _keep("\"#<>'")
_FRAGMENT_KEEP = _keep('"<>`')
"""The standard's path, special-query and fragment percent-encode sets, inverted; every
other character (controls, space, non-ASCII as UTF-8) is percent-encoded."""

_SINGLE_DOT = frozenset({".", "%2e"})
_DOUBLE_DOT = frozenset({"..", ".%2e", "%2e.", "%2e%2e"})


def _resolve_dots(path: str) -> list[str]:
    """The segments of a path-absolute ``path`` (``\\`` already ``/``) with ``.`` and
    ``..`` (plain or percent-encoded) resolved as the standard's path state does."""
    segments = path.split("/")[1:]
    kept: list[str] = []
    for index, segment in enumerate(segments):
        last = index == len(segments) - 1
        lowered = segment.lower()
        if lowered in _DOUBLE_DOT:
            if kept:
                kept.pop()
            if last:
                kept.append("")
        elif lowered in _SINGLE_DOT:
            if last:
                kept.append("")
        else:
            kept.append(segment)
    return kept


def same_origin_path(next_url: str | None) -> str:
    """Return ``next_url`` as a path of this server (path, query and fragment, encoded as a
    browser would), or ``/`` when a browser could take it anywhere else.

    ``same_origin_path("/projects/ulm?tab=log")`` is ``"/projects/ulm?tab=log"``;
    ``same_origin_path("/\\\\evil.example/x")`` and ``same_origin_path("https://x/")`` are
    ``"/"``.
    """
    if not next_url:
        return HOME
    url = _SURROGATE.sub("\ufffd", next_url).strip(_C0_OR_SPACE).translate(_TAB_OR_NEWLINE)
    if _SCHEME.match(url):
        return HOME
    if url[:1] not in ("/", "\\") or url[1:2] in ("/", "\\"):
        return HOME
    rest, has_fragment, fragment = url.partition("#")
    path, has_query, query = rest.partition("?")
    segments = _resolve_dots(path.replace("\\", "/"))
    result = "/" + "/".join(quote(segment, safe=_PATH_KEEP) for segment in segments)
    if result.startswith("//"):
        # "/.//evil.example" stays on this server in a browser, but its resolved path
        # "//evil.example" would not, written back as a relative URL.
        return HOME
    if has_query:
        result += "?" + quote(query, safe=_QUERY_KEEP)
    if has_fragment:
        result += "#" + quote(fragment, safe=_FRAGMENT_KEEP)
    return result
