"""Pure parts of serve: log level filtering and the DNS-rebinding allow-lists."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from vmcp_actors.serve.app import security_settings
from vmcp_actors.serve.clients import LEVELS, level_allows


@given(st.sampled_from(LEVELS), st.sampled_from(LEVELS))
def test_a_level_passes_exactly_when_it_is_at_least_the_minimum(minimum: str, level: str) -> None:
    assert level_allows(minimum, level) == (LEVELS.index(level) >= LEVELS.index(minimum))
    assert level_allows(None, level)


def test_loopback_binding_allows_only_loopback_names() -> None:
    settings = security_settings("127.0.0.1")
    assert settings.enable_dns_rebinding_protection
    assert "127.0.0.1:*" in settings.allowed_hosts
    assert "localhost:*" in settings.allowed_hosts
    assert "[::1]:*" in settings.allowed_hosts
    assert "http://localhost:*" in settings.allowed_origins
    assert not any("evil" in host for host in settings.allowed_hosts)


def test_a_specific_host_and_extra_names_are_allowed_but_not_the_wildcard_address() -> None:
    assert "10.0.0.5:*" in security_settings("10.0.0.5").allowed_hosts
    assert "[fd00::1]:*" in security_settings("fd00::1").allowed_hosts
    anywhere = security_settings("0.0.0.0", ["vmcp.example.com"])
    assert "0.0.0.0:*" not in anywhere.allowed_hosts
    assert "vmcp.example.com:*" in anywhere.allowed_hosts
    assert "https://vmcp.example.com" in anywhere.allowed_origins
