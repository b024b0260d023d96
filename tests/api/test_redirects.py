"""Where signing in may lead: a path of this server, decided as a browser parses URLs.

The corpus holds what a browser resolves to another host although it starts with one
``/`` (backslashes, tabs and newlines, leading controls, dot segments) next to the paths a
person really comes back to. ``tests/ui/test_shell.py`` checks the same corpus against
Chromium's own URL parser.
"""

from __future__ import annotations

import html
import re
from urllib.parse import parse_qs, quote, urlsplit

import pytest

from tests.fixtures.winslow import Harness
from winslow.api.redirects import same_origin_path

ELSEWHERE = [
    "//evil.example/x",
    "/\\evil.example/x",
    "\\/evil.example/x",
    "\\\\evil.example/x",
    "/\t/evil.example/x",
    "/\n/evil.example/x",
    "/\r\n\\evil.example",
    "\t//evil.example",
    " //evil.example",
    "\x00//evil.example",
    "\x1f/\\evil.example",
    "///evil.example",
    "/.//evil.example/x",
    "/./\\evil.example",
    "/a/../..//evil.example",
    "/%2e//evil.example",
    "https://evil.example/x",
    "http:\\\\evil.example",
    "http:/\\evil.example",
    "HTTPS:evil.example",
    "javascript:alert(1)",
    "java\tscript:alert(1)",
    " javascript:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    "evil.example",
    "nodes",
    "?next=//evil.example",
    "#x",
    "",
]
"""``next`` values a browser could resolve to another origin, or that name no path here:
each becomes ``/``."""

KEPT = [
    ("/", "/"),
    ("/nodes", "/nodes"),
    ("/projects/ulm-0603?tab=log#run-3", "/projects/ulm-0603?tab=log#run-3"),
    ("/%5Cevil.example/x", "/%5Cevil.example/x"),  # encoded: a path segment here
    ("/%2F%2Fevil.example", "/%2F%2Fevil.example"),
    ("/a\\b", "/a/b"),
    ("/a/./b/../c", "/a/c"),
    ("/a/%2E%2e/b", "/b"),
    ("/..", "/"),
    ("/a b", "/a%20b"),
    ("/ulm \u00fc?q=\u00fc#\u00fc", "/ulm%20%C3%BC?q=%C3%BC#%C3%BC"),
    ('/"<x>`', "/%22%3Cx%3E%60"),
    ("  /nodes\t", "/nodes"),
    ("/no\nde\rs", "/nodes"),
    ("/x?a=//evil.example", "/x?a=//evil.example"),
    ("/x#//evil.example", "/x#//evil.example"),
]
"""``next`` values that stay on this server, with the path a browser goes to."""


@pytest.mark.parametrize("value", ELSEWHERE, ids=repr)
def test_a_next_that_could_lead_elsewhere_becomes_home(value: str) -> None:
    assert same_origin_path(value) == "/"


@pytest.mark.parametrize(("value", "expected"), KEPT, ids=[repr(v) for v, _ in KEPT])
def test_a_path_of_this_server_is_kept_as_a_browser_reads_it(value: str, expected: str) -> None:
    assert same_origin_path(value) == expected


@pytest.mark.parametrize(
    "value", [*ELSEWHERE, *(v for v, _ in KEPT), *(chr(c) + "/x" for c in range(0x80))], ids=repr
)
def test_what_comes_out_is_always_one_slash_then_a_path_of_this_server(value: str) -> None:
    result = same_origin_path(value)
    assert result.startswith("/") and result[1:2] not in ("/", "\\")
    assert not re.search(r"[\x00-\x20\x7f\\]", result.partition("?")[0]), result


def _rendered_next(page: str) -> str:
    match = re.search(r'data-next="([^"]*)"', page)
    assert match, page[:500]
    return html.unescape(match.group(1))


def test_the_sign_in_page_hands_its_script_only_a_path_of_this_server(winslow: Harness) -> None:
    rendered = {}
    for value, expected in [*((v, "/") for v in ELSEWHERE), *KEPT]:
        page = winslow.api.get("/signin", params={"next": value})
        assert page.status_code == 200, value
        rendered[value] = (_rendered_next(page.text), expected)
    assert {v: got for v, (got, expected) in rendered.items() if got != expected} == {}


def test_the_way_to_sign_in_carries_only_a_path_of_this_server() -> None:
    from winslow.api.routes.console import sign_in_redirect

    for value in ELSEWHERE:
        location = urlsplit(sign_in_redirect(value).headers["location"])
        assert (location.path, parse_qs(location.query)["next"]) == ("/signin", ["/"]), value


def test_a_page_asked_for_without_a_session_comes_back_after_signing_in(winslow: Harness) -> None:
    response = winslow.api.get(
        "/nodes?view=gpu&x=%C3%BC", headers={"Authorization": ""}, follow_redirects=False
    )
    assert response.status_code == 303
    location = response.headers["location"]
    assert location == "/signin?next=" + quote("/nodes?view=gpu&x=%C3%BC")
    signin = winslow.api.get(location)
    assert _rendered_next(signin.text) == "/nodes?view=gpu&x=%C3%BC"
