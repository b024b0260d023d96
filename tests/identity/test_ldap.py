"""LDAP sign-in against a real OpenLDAP ``slapd`` (tests/fixtures/slapd.py).

The directory holds alice (groups vision and traffic), bob (traffic, and night-shift by
``memberUid``), carol and dave (no group), and a service account that searches; see the
fixture for the whole tree.
"""

from __future__ import annotations

import dataclasses
import socket
from collections.abc import Iterator

import pytest

from tests.fixtures.ports import pick_ports
from tests.fixtures.slapd import Slapd
from winslow.identity.base import ExternalIdentity, IdentityUnavailable
from winslow.identity.ldap import LdapConfig, ldap_authenticate
from winslow.settings import Settings


def lab(slapd: Slapd, **changes: object) -> LdapConfig:
    """The configuration a lab would write for the test directory, with ``changes``."""
    config = LdapConfig(
        url=slapd.url,
        bind_dn=slapd.service_dn,
        bind_password=slapd.service_password,
        user_base=f"ou=people,{slapd.suffix}",
        group_base=f"ou=groups,{slapd.suffix}",
    )
    return dataclasses.replace(config, **changes)  # type: ignore[arg-type]


def test_from_settings_is_none_without_a_url() -> None:
    assert LdapConfig.from_settings(Settings(ldap_url=None)) is None


def test_from_settings_takes_every_ldap_setting(tmp_path) -> None:
    settings = Settings(
        ldap_url="ldaps://ldap.lab:636",
        ldap_bind_dn="cn=search,dc=lab",
        ldap_bind_password="pw",
        ldap_user_base="ou=people,dc=lab",
        ldap_user_filter="(sAMAccountName={username})",
        ldap_group_base="ou=groups,dc=lab",
        ldap_group_filter="(member={dn})",
        ldap_start_tls=True,
        ldap_cacert=tmp_path / "ca.pem",
    )
    assert LdapConfig.from_settings(settings) == LdapConfig(
        url="ldaps://ldap.lab:636",
        bind_dn="cn=search,dc=lab",
        bind_password="pw",
        user_base="ou=people,dc=lab",
        user_filter="(sAMAccountName={username})",
        group_base="ou=groups,dc=lab",
        group_filter="(member={dn})",
        start_tls=True,
        cacert=tmp_path / "ca.pem",
    )
    assert "pw" not in repr(LdapConfig.from_settings(settings))


@pytest.mark.parametrize(
    ("name", "display_name", "groups"),
    [
        ("alice", "Alice Liddell", ("traffic", "vision")),
        ("bob", "Bob Builder", ("night-shift", "traffic")),
        ("carol", "Carol Danvers", ()),
    ],
)
def test_right_password_gives_the_person_and_their_groups(
    slapd, name, display_name, groups
) -> None:
    assert ldap_authenticate(lab(slapd), name, slapd.passwords[name]) == ExternalIdentity(
        name=name,
        source="ldap",
        display_name=display_name,
        email=f"{name}@lab.test",
        groups=groups,
    )


def test_display_name_falls_back_to_the_common_name(slapd) -> None:
    identity = ldap_authenticate(lab(slapd), "dave", slapd.passwords["dave"])
    assert identity == ExternalIdentity(name="dave", source="ldap", display_name="Dave Lister")


def test_a_name_in_another_case_is_the_same_user(slapd) -> None:
    identity = ldap_authenticate(lab(slapd), "ALICE", slapd.passwords["alice"])
    assert identity is not None
    assert identity.name == "alice"
    # memberUid compares case-sensitively: the directory's spelling finds the group.
    identity = ldap_authenticate(lab(slapd), "Bob", slapd.passwords["bob"])
    assert identity is not None
    assert (identity.name, identity.groups) == ("bob", ("night-shift", "traffic"))


def test_wrong_password_is_refused(slapd) -> None:
    assert ldap_authenticate(lab(slapd), "alice", slapd.passwords["bob"]) is None
    assert ldap_authenticate(lab(slapd), "alice", slapd.passwords["alice"] + "x") is None


def test_unknown_user_is_refused(slapd) -> None:
    assert ldap_authenticate(lab(slapd), "mallory", "anything") is None


def test_empty_password_is_refused(slapd) -> None:
    # A simple bind without a password is an unauthenticated bind, which servers may allow.
    assert ldap_authenticate(lab(slapd), "alice", "") is None


@pytest.mark.parametrize("name", ["*", "ali*", "alice)(uid=*", "alice)(|(uid=*", "*)(cn=*"])
def test_filter_characters_in_the_name_match_nothing(slapd, name) -> None:
    assert ldap_authenticate(lab(slapd), name, slapd.passwords["alice"]) is None


def test_anonymous_search_finds_people_too(slapd) -> None:
    config = lab(slapd, bind_dn=None, bind_password=None)
    identity = ldap_authenticate(config, "bob", slapd.passwords["bob"])
    assert identity is not None
    assert identity.groups == ("night-shift", "traffic")


def test_without_a_group_base_no_groups_are_read(slapd) -> None:
    identity = ldap_authenticate(lab(slapd, group_base=""), "alice", slapd.passwords["alice"])
    assert identity is not None
    assert identity.groups == ()


def test_a_server_that_is_not_there_is_unavailable(slapd) -> None:
    (port,) = pick_ports(1)
    url = f"ldap://127.0.0.1:{port}"
    with pytest.raises(IdentityUnavailable) as caught:
        ldap_authenticate(lab(slapd, url=url), "alice", slapd.passwords["alice"])
    assert url in caught.value.message
    assert "could not be reached" in caught.value.message


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A port that accepts connections and never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield f"ldap://127.0.0.1:{sock.getsockname()[1]}"


def test_a_server_that_never_answers_is_unavailable(slapd, silent_server) -> None:
    config = lab(slapd, url=silent_server, timeout=1)
    with pytest.raises(IdentityUnavailable, match="could not be reached"):
        ldap_authenticate(config, "alice", slapd.passwords["alice"])


def test_service_account_with_a_wrong_password_is_unavailable(slapd) -> None:
    config = lab(slapd, bind_password="not-the-password")
    with pytest.raises(IdentityUnavailable) as caught:
        ldap_authenticate(config, "alice", slapd.passwords["alice"])
    message = caught.value.message
    assert slapd.url in message
    assert slapd.service_dn in message
    assert "invalidCredentials" in message
    assert "WINSLOW_LDAP_BIND_PASSWORD" in message


def test_a_user_base_that_does_not_exist_is_unavailable(slapd) -> None:
    config = lab(slapd, user_base=f"ou=nobody,{slapd.suffix}")
    with pytest.raises(IdentityUnavailable, match="ou=nobody"):
        ldap_authenticate(config, "alice", slapd.passwords["alice"])


def test_a_user_filter_that_is_not_a_filter_is_unavailable(slapd) -> None:
    config = lab(slapd, user_filter="(uid={username}")
    with pytest.raises(IdentityUnavailable, match="WINSLOW_LDAP_USER_FILTER"):
        ldap_authenticate(config, "alice", slapd.passwords["alice"])


def test_a_service_account_without_a_password_is_unavailable(slapd) -> None:
    with pytest.raises(IdentityUnavailable, match="WINSLOW_LDAP_BIND_PASSWORD is not set"):
        ldap_authenticate(lab(slapd, bind_password=None), "alice", slapd.passwords["alice"])


def test_a_ca_file_that_is_not_there_is_unavailable(slapd, tmp_path) -> None:
    config = lab(slapd, start_tls=True, cacert=tmp_path / "missing.pem")
    with pytest.raises(IdentityUnavailable, match=r"missing\.pem"):
        ldap_authenticate(config, "alice", slapd.passwords["alice"])


def test_start_tls_with_the_lab_ca(slapd) -> None:
    config = lab(slapd, start_tls=True, cacert=slapd.ca)
    identity = ldap_authenticate(config, "alice", slapd.passwords["alice"])
    assert identity is not None
    assert identity.name == "alice"


def test_ldaps_with_the_lab_ca(slapd) -> None:
    config = lab(slapd, url=slapd.ldaps_url, cacert=slapd.ca)
    identity = ldap_authenticate(config, "bob", slapd.passwords["bob"])
    assert identity is not None
    assert identity.groups == ("night-shift", "traffic")


@pytest.mark.parametrize("where", ["start_tls", "ldaps"])
def test_a_certificate_from_another_ca_is_unavailable(slapd, where) -> None:
    if where == "ldaps":
        config = lab(slapd, url=slapd.ldaps_url, cacert=slapd.other_ca)
    else:
        config = lab(slapd, start_tls=True, cacert=slapd.other_ca)
    with pytest.raises(IdentityUnavailable, match="WINSLOW_LDAP_CACERT"):
        ldap_authenticate(config, "alice", slapd.passwords["alice"])
