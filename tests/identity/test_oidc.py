"""Signing in through an OpenID provider: the code flow with PKCE against a small real
provider (``tests/fixtures/oidc_provider.py``), followed by hand with httpx as a browser
would follow it, into a working console session; and every way it must refuse."""

from __future__ import annotations

import base64
import dataclasses
import json
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.fixtures.oidc_provider import OidcProvider, running_provider
from tests.fixtures.ports import pick_ports
from tests.fixtures.s3 import _drop_bucket
from tests.fixtures.served import served_in_thread
from tests.fixtures.winslow import build_context
from winslow.api.app import create_app
from winslow.api.context import AppContext
from winslow.errors import AuthError
from winslow.identity.base import IdentityUnavailable
from winslow.identity.oidc import OidcConfig, pkce_challenge
from winslow.identity.oidc import OidcProvider as OidcClient
from winslow.settings import Settings
from winslow.storage.objects import ObjectStore

CALLBACK = "/api/v1/oidc/callback"


@pytest.fixture(scope="module")
def provider() -> Iterator[OidcProvider]:
    with running_provider() as provider:
        yield provider


@pytest.fixture(autouse=True)
def behaving(provider: OidcProvider) -> Iterator[None]:
    provider.reset()
    yield
    provider.reset()


def config_of(provider: OidcProvider, **changes: Any) -> OidcConfig:
    settings = Settings(
        oidc_issuer=provider.address,
        oidc_client_id=provider.client_id,
        oidc_client_secret=provider.client_secret,
    )
    config = OidcConfig.from_settings(settings)
    assert config is not None
    return dataclasses.replace(config, **changes)


def approve(url: str) -> dict[str, str]:
    """What the provider's ``/authorize`` sends the browser back with."""
    answer = httpx.get(url)
    assert answer.status_code == 302, answer.text
    return {
        key: values[0]
        for key, values in parse_qs(urlsplit(answer.headers["location"]).query).items()
    }


# -- the adapter alone ---------------------------------------------------------------


def test_the_authorization_request_carries_state_nonce_and_an_s256_challenge(provider) -> None:
    client = OidcClient(config_of(provider))
    redirect = "http://127.0.0.1:9/api/v1/oidc/callback"
    url, attempt = client.begin(redirect, "/projects")
    query = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    assert url.startswith(f"{provider.address}/authorize?")
    assert query["response_type"] == "code"
    assert query["scope"].split() == ["openid", "profile", "email"]
    assert (query["state"], query["nonce"]) == (attempt.state, attempt.nonce)
    assert query["code_challenge_method"] == "S256"
    assert query["code_challenge"] == pkce_challenge(attempt.verifier)
    assert attempt.verifier not in url  # only its hash leaves
    _, again = client.begin(redirect, "/")
    assert {again.state, again.nonce, again.verifier}.isdisjoint(
        {attempt.state, attempt.nonce, attempt.verifier}
    )


def test_a_public_client_sends_its_id_and_no_secret(provider) -> None:
    provider.client_secret = None
    try:
        client = OidcClient(config_of(provider, client_secret=None))
        provider.redirect_uris.append("http://127.0.0.1:9/cb")
        url, attempt = client.begin("http://127.0.0.1:9/cb", "/")
        identity = client.finish(attempt, approve(url)["code"])
    finally:
        provider.client_secret = "provider-secret"
    assert identity.name == "ada"
    (sent,) = provider.token_requests
    assert (sent["client_id"], sent["authorization"]) == (provider.client_id, "")


def test_groups_left_out_of_the_id_token_come_from_userinfo(provider) -> None:
    provider.left_out = ("groups",)
    client = OidcClient(config_of(provider))
    provider.redirect_uris.append("http://127.0.0.1:9/cb")
    url, attempt = client.begin("http://127.0.0.1:9/cb", "/")
    identity = client.finish(attempt, approve(url)["code"])
    assert identity.groups == ("vision", "analysts")
    assert (identity.display_name, identity.email) == ("Ada Lovelace", "ada@lab.example")


def test_a_token_signed_with_another_algorithm_or_none_is_refused(provider) -> None:
    import jwt

    client = OidcClient(config_of(provider))
    claims = {"iss": provider.address, "aud": provider.client_id, "sub": "x", "nonce": "n"}
    shared = "a-client-secret-used-as-the-key-of-an-hmac"
    for token in (jwt.encode(claims, shared, algorithm="HS256"),
                  jwt.encode(claims, None, algorithm="none")):  # fmt: skip
        with pytest.raises(AuthError, match="which Winslow refuses"):
            client.verify_id_token(token, "n")


def test_an_issuer_that_calls_itself_otherwise_is_a_setup_problem(provider) -> None:
    client = OidcClient(
        config_of(provider, issuer=provider.address.replace("127.0.0.1", "localhost"))
    )
    with pytest.raises(IdentityUnavailable, match="set WINSLOW_OIDC_ISSUER to exactly"):
        client.begin("http://127.0.0.1:9/cb", "/")


def test_an_issuer_without_a_client_id_is_a_setup_problem() -> None:
    with pytest.raises(IdentityUnavailable, match="WINSLOW_OIDC_CLIENT_ID is not"):
        OidcConfig.from_settings(Settings(oidc_issuer="https://login.lab.example"))
    assert OidcConfig.from_settings(Settings()) is None


# -- through Winslow -------------------------------------------------------------------


@dataclass
class Served:
    address: str
    context: AppContext


@pytest.fixture(scope="module")
def served(
    provider: OidcProvider, s3_server, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    """One Winslow for the module, behind uvicorn, signing in through ``provider``."""
    objects = ObjectStore(dataclasses.replace(s3_server, bucket=f"test-{secrets.token_hex(6)}"))
    objects.ensure_bucket()
    folder = tmp_path_factory.mktemp("oidc")
    context = build_context(folder / "winslow", objects)
    context.settings = context.settings.model_copy(
        update={
            "oidc_issuer": provider.address,
            "oidc_client_id": provider.client_id,
            "oidc_client_secret": provider.client_secret,
        }
    )
    try:
        with served_in_thread(create_app(context)) as address:
            provider.redirect_uris.append(address + CALLBACK)
            yield Served(address, context)
    finally:
        context.engine.stop()
        context.store.close()
        _drop_bucket(objects)


@dataclass
class Arrival:
    """A browser's way back from the provider, before Winslow has looked at it."""

    callback: str
    attempt_cookie: str
    start: httpx.Response


def leave(served: Served, next_path: str = "/") -> Arrival:
    """Press "Sign in with ..." and let the provider approve; stop at the way back."""
    start = httpx.get(served.address + "/api/v1/oidc/start", params={"next": next_path})
    assert start.status_code == 303, start.text
    back = httpx.get(start.headers["location"])
    assert back.status_code == 302, back.text
    return Arrival(back.headers["location"], start.cookies["winslow_oidc"], start)


def come_back(
    arrival: Arrival, cookie: str | None = None, url: str | None = None
) -> httpx.Response:
    return httpx.get(
        url or arrival.callback, cookies={"winslow_oidc": cookie or arrival.attempt_cookie}
    )


def set_cookie(response: httpx.Response, name: str) -> str:
    (header,) = [h for h in response.headers.get_list("set-cookie") if h.startswith(f"{name}=")]
    return header


def test_signing_in_through_the_provider_ends_in_a_console_session(served, provider) -> None:
    arrival = leave(served, "/nodes?view=gpus")
    attempt = set_cookie(arrival.start, "winslow_oidc").lower()
    assert "httponly" in attempt and "samesite=lax" in attempt and "path=/api/v1/oidc/" in attempt

    signed_in = come_back(arrival)

    assert signed_in.status_code == 200, signed_in.text
    assert 'http-equiv="refresh" content="0;url=/nodes?view=gpus"' in signed_in.text
    session = set_cookie(signed_in, "winslow_session").lower()
    assert "httponly" in session and "samesite=strict" in session
    cookies = {"winslow_session": signed_in.cookies["winslow_session"]}
    page = httpx.get(served.address + "/nodes", cookies=cookies)
    assert page.status_code == 200 and "ada" in page.text
    mine = httpx.get(served.address + "/api/v1/sessions", cookies=cookies).json()["data"]
    assert [s["user"] for s in mine] == ["ada"]
    (sent,) = provider.token_requests  # the verifier went with the code, the secret by Basic
    assert sent["code_verifier"] and sent["authorization"].startswith("Basic ")
    again = come_back(arrival)  # a code is good once
    assert again.status_code == 401 and "refused the sign-in code" in again.json()["detail"]


def test_the_user_is_made_from_the_id_token_with_its_groups(served) -> None:
    from winslow.store import people

    assert come_back(leave(served)).status_code == 200
    user = people.get_user(served.context.store, "ada")
    assert (user.source, user.display_name, user.email) == (
        "oidc",
        "Ada Lovelace",
        "ada@lab.example",
    )
    assert user.groups == {"vision": "member", "analysts": "member"}


def test_a_verifier_other_than_the_challenged_one_is_refused_by_the_provider(
    served, provider
) -> None:
    arrival = leave(served)
    attempt = json.loads(base64.urlsafe_b64decode(arrival.attempt_cookie))
    attempt["verifier"] = secrets.token_urlsafe(48)
    forged = base64.urlsafe_b64encode(json.dumps(attempt).encode()).decode()

    answer = come_back(arrival, cookie=forged)

    assert answer.status_code == 401
    assert "PKCE verification failed" in answer.json()["detail"]
    assert "winslow_session" not in answer.cookies


def test_a_way_back_whose_state_differs_is_refused(served) -> None:
    arrival = leave(served)
    wrong = arrival.callback.replace("state=", "state=x")
    answer = come_back(arrival, url=wrong)
    assert answer.status_code == 422
    assert "does not match the sign-in this browser started" in answer.json()["detail"]
    lost = httpx.get(arrival.callback)  # another browser, without the attempt's cookie
    assert lost.status_code == 422 and "no sign-in through" in lost.json()["detail"]


@pytest.mark.parametrize(
    ("misbehaviour", "said"),
    [
        ("wrong-audience", "Audience doesn't match"),
        ("wrong-nonce", "its nonce differs"),
        ("bad-signature", "Signature verification failed"),
        ("expired", "Signature has expired"),
        ("wrong-issuer", "Invalid issuer"),
    ],
)
def test_an_id_token_that_fails_a_check_signs_nobody_in(
    served, provider, misbehaviour, said
) -> None:
    arrival = leave(served)
    provider.misbehave = misbehaviour
    answer = come_back(arrival)
    assert answer.status_code == 401, answer.text
    assert said in answer.json()["detail"]
    assert "winslow_session" not in answer.cookies


def test_the_provider_saying_no_is_passed_on(served) -> None:
    arrival = leave(served)
    state = parse_qs(urlsplit(arrival.callback).query)["state"][0]
    refused = (
        f"{served.address}{CALLBACK}?error=access_denied&error_description=Not+today&state={state}"
    )
    answer = come_back(arrival, url=refused)
    assert answer.status_code == 401 and "did not sign you in: Not today" in answer.json()["detail"]


@pytest.mark.parametrize(
    "elsewhere", ["//evil.example/x", "https://evil.example/", "/\\evil.example"]
)
def test_a_next_that_leads_elsewhere_is_refused(served, elsewhere) -> None:
    answer = httpx.get(served.address + "/api/v1/oidc/start", params={"next": elsewhere})
    assert (
        answer.status_code == 422
        and "does not lead to a page of this server" in answer.json()["detail"]
    )


def test_a_next_slipped_into_the_attempt_still_lands_here(served) -> None:
    arrival = leave(served)
    attempt = json.loads(base64.urlsafe_b64decode(arrival.attempt_cookie))
    attempt["next"] = "//evil.example/"
    forged = base64.urlsafe_b64encode(json.dumps(attempt).encode()).decode()
    answer = come_back(arrival, cookie=forged)
    assert answer.status_code == 200 and 'content="0;url=/"' in answer.text


def test_a_provider_that_is_down_or_failing_answers_503(served, provider) -> None:
    arrival = leave(served)
    provider.misbehave = "token-error"
    failing = come_back(arrival)
    assert (
        failing.status_code == 503
        and "refused Winslow's token request (500" in failing.json()["detail"]
    )

    (port,) = pick_ports(1)
    settings = served.context.settings
    served.context.settings = settings.model_copy(
        update={"oidc_issuer": f"http://127.0.0.1:{port}"}
    )
    try:
        down = httpx.get(served.address + "/api/v1/oidc/start")
    finally:
        served.context.settings = settings
    assert down.status_code == 503 and "cannot be reached" in down.json()["detail"]


def test_the_sign_in_page_offers_the_provider(served, provider) -> None:
    told = httpx.get(served.address + "/api/v1/oidc").json()
    assert told == {"configured": True, "provider": "127.0.0.1"}
    page = httpx.get(served.address + "/signin?next=/nodes").text
    assert "Sign in with 127.0.0.1" in page and "/api/v1/oidc/start?next=/nodes" in page


def test_without_a_provider_there_is_nothing_to_offer(served) -> None:
    settings = served.context.settings
    served.context.settings = settings.model_copy(update={"oidc_issuer": None})
    try:
        told = httpx.get(served.address + "/api/v1/oidc").json()
        start = httpx.get(served.address + "/api/v1/oidc/start")
        page = httpx.get(served.address + "/signin").text
    finally:
        served.context.settings = settings
    assert told == {"configured": False, "provider": None}
    assert start.status_code == 404 and "WINSLOW_OIDC_ISSUER" in start.json()["detail"]
    assert "/api/v1/oidc/start" not in page and 'id="password-form"' in page


def test_a_provider_cannot_take_over_a_local_user(served, provider) -> None:
    from winslow.store import people

    people.create_user(served.context.store, "grace", password="a long local password")
    provider.claims = {**provider.claims, "preferred_username": "grace", "sub": "u-1906"}
    try:
        answer = come_back(leave(served))
    finally:
        provider.claims = {**provider.claims, "preferred_username": "ada", "sub": "u-1815"}
    assert answer.status_code == 409 and "is a local user here" in answer.json()["detail"]
    assert people.get_user(served.context.store, "grace").source == "local"


def test_a_disabled_user_gets_no_session(served) -> None:
    from winslow.store import people

    assert come_back(leave(served)).status_code == 200  # ada exists
    people.update_user(served.context.store, "ada", disabled=True)
    try:
        answer = come_back(leave(served))
    finally:
        people.update_user(served.context.store, "ada", disabled=False)
    assert answer.status_code == 401 and "'ada' is disabled" in answer.json()["detail"]
    assert "winslow_session" not in answer.cookies
