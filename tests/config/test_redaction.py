"""Redaction: URLs keep their shape but lose their credentials; known secrets vanish from any text."""

from __future__ import annotations

import base64
import io
import json
import logging
import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vmcp_actors.config.auth import AuthSpec
from vmcp_actors.config.backend_spec import BackendSpec
from vmcp_actors.config.log_redaction import UNREDACTABLE, RedactionFilter, install_log_redaction
from vmcp_actors.config.redaction import (
    MIN_SECRET_LENGTH,
    REDACTED,
    Scrubber,
    header_secrets,
    redact_url,
    redact_urls_in,
    url_secrets,
)
from vmcp_actors.config.runtime_config import RuntimeConfig
from vmcp_actors.config.secret_values import SecretRedactor

SECRET = "S3CR3T-redaction-0471"
TOKEN = "tok-redaction-0472-abcdef"
URL = f"http://svc:{SECRET}@127.0.0.1:8080/mcp?api_key={SECRET}&tenant=acme#frag"

# --------------------------------------------------------------------------- URLs


def test_a_url_keeps_scheme_host_port_path_and_query_names_only() -> None:
    assert redact_url(URL) == f"http://{REDACTED}@127.0.0.1:8080/mcp?api_key={REDACTED}&tenant={REDACTED}"
    assert redact_url("https://h.test/mcp") == "https://h.test/mcp"
    assert redact_url("http://[::1]:9/mcp?token") == f"http://[::1]:9/mcp?{REDACTED}"
    assert redact_url("http://[::1") == "<unparseable url>"
    assert redact_url(redact_url(URL)) == redact_url(URL)  # idempotent: safe to apply twice


def test_url_secrets_are_the_user_info_and_query_values_raw_and_decoded() -> None:
    found = url_secrets("http://user:p%40ss-word@h/mcp?key=a%2Bb-value&flag")
    assert {"user", "p%40ss-word", "p@ss-word", "a%2Bb-value", "a+b-value", "flag"} <= found
    assert url_secrets(None) == frozenset()
    assert url_secrets("http://[::1") == frozenset()


def test_urls_inside_text_are_redacted_and_others_left_alone() -> None:
    text = f"HTTP Request: POST {URL} 200; see https://docs.test/x for help"
    assert redact_urls_in(text) == (f"HTTP Request: POST {redact_url(URL)} 200; see https://docs.test/x for help")


# Credentials from one alphabet, everything else from another: any leak is visible.
_secret_text = st.text(alphabet="QWXZ", min_size=1, max_size=12)
_plain = st.text(alphabet="abcdefghijklmnop", min_size=1, max_size=8)


@settings(deadline=None)  # a loaded CI machine must not turn a slow example into a failure
@given(_secret_text, _secret_text, _plain, _plain, st.lists(st.tuples(_plain, _secret_text), max_size=4))
def test_no_url_credential_survives_redaction(
    user: str, password: str, host: str, path: str, query: list[tuple[str, str]]
) -> None:
    query_text = "&".join(f"{name}={value}" for name, value in query)
    url = f"https://{user}:{password}@{host}.test:8443/{path}?{query_text}"
    redacted = redact_url(url)
    assert not set("QWXZ") & set(redacted), redacted
    assert redacted.startswith(f"https://{REDACTED}@{host}.test:8443/{path}")
    assert redact_urls_in(f"url={url} done") == f"url={redacted} done"


# --------------------------------------------------------------------------- known values


def test_a_header_counts_whole_and_as_its_credentials_basic_decoded() -> None:
    assert header_secrets(f"Bearer {TOKEN}") == {f"Bearer {TOKEN}", TOKEN}
    basic = base64.b64encode(b"robot:hunter2-password").decode()
    assert {f"Basic {basic}", basic, "robot:hunter2-password", "hunter2-password"} <= header_secrets(f"Basic {basic}")


def test_the_scrubber_finds_secrets_in_the_forms_loggers_and_servers_echo_them() -> None:
    odd = "it's-a-sëcret\\value"
    scrubber = Scrubber([odd, "short"])
    for echoed in (odd, repr(odd)[1:-1], json.dumps(odd)[1:-1], repr(odd.encode())[2:-1]):
        assert scrubber.scrub(f"[{echoed}]") == f"[{REDACTED}]"
    assert scrubber.scrub("too short to scrub: short") == "too short to scrub: short"


def test_http_credentials_are_hidden_even_when_unknown_but_challenges_are_kept() -> None:
    scrubber = Scrubber()
    assert scrubber.scrub("authorization: Bearer eyJhbGciOi.abc-def") == f"authorization: Bearer {REDACTED}"
    challenge = 'WWW-Authenticate: Bearer realm="x", error="invalid_token"'
    assert scrubber.scrub(challenge) == challenge


def test_a_secret_cut_by_a_truncation_is_hidden_too() -> None:
    scrubber = Scrubber([TOKEN])
    assert scrubber.scrub(f"server said: bad {TOKEN[:12]}...") == f"server said: bad {REDACTED}..."
    assert scrubber.scrub(f"bad {TOKEN[:9]}…") == f"bad {REDACTED}…"


_secret_chars = "abcXYZ-_.'\"\\é"
_secrets = st.lists(st.text(alphabet=_secret_chars, min_size=MIN_SECRET_LENGTH, max_size=16), min_size=1, max_size=4)


@settings(deadline=None)
@given(_secrets, st.lists(st.text(max_size=10), min_size=1, max_size=6), st.data())
def test_no_known_secret_survives_scrubbing(secrets: list[str], fillers: list[str], data: st.DataObject) -> None:
    pieces: list[str] = []
    for filler in fillers:
        pieces.append(filler)
        pieces.append(data.draw(st.sampled_from(secrets)))
    scrubbed = Scrubber(secrets).scrub("".join(pieces))
    for secret in secrets:
        assert secret not in scrubbed


# --------------------------------------------------------------------------- a config's secrets


def _config(token_file: Path) -> RuntimeConfig:
    return RuntimeConfig(
        backends=(
            BackendSpec(
                name="remote",
                type="streamable-http",
                url=URL,
                headers={"X-Api-Key": "header-key-0473"},
                auth=AuthSpec(type="bearer", token_file=str(token_file)),
            ),
            BackendSpec(name="local", command="server", env={"DB_PASSWORD": "env-pass-0474", "DEBUG": "1"}),
            BackendSpec(
                name="env-token", type="sse", url="http://h/sse", auth=AuthSpec(type="bearer", token_env="VMCP_T")
            ),
        )
    )


def test_the_redactor_knows_headers_env_url_credentials_and_tokens(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    redactor = SecretRedactor.from_config(_config(token_file), environ={"VMCP_T": "env-token-0475"})
    text = f"{SECRET} header-key-0473 env-pass-0474 {TOKEN} env-token-0475 DEBUG=1"
    assert redactor.scrub(text) == f"{REDACTED} {REDACTED} {REDACTED} {REDACTED} {REDACTED} DEBUG=1"


def test_a_rotated_token_is_known_before_it_is_used(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN)
    environ = {"VMCP_T": "env-token-0475"}
    redactor = SecretRedactor.from_config(_config(token_file), environ=environ)
    assert redactor.scrub(TOKEN) == REDACTED
    # A mounted Secret is rotated by swapping a symlink: a new file, a new inode.
    rotated = tmp_path / "token.new"
    rotated.write_text("rotated-token-0476")
    os.replace(rotated, token_file)
    environ["VMCP_T"] = "env-token-rotated-0477"
    assert redactor.scrub("rotated-token-0476 env-token-rotated-0477") == f"{REDACTED} {REDACTED}"
    assert redactor.scrub(TOKEN) == REDACTED  # the old one is never forgotten


def test_a_spec_added_later_is_scrubbed_too() -> None:
    redactor = SecretRedactor()
    assert redactor.scrub("later-secret-0478") == "later-secret-0478"
    redactor.add(BackendSpec(name="late", command="x", env={"K": "later-secret-0478"}))
    assert redactor.scrub("later-secret-0478") == REDACTED


def test_an_unreadable_token_source_scrubs_nothing_and_raises_nothing(tmp_path: Path) -> None:
    fifo = tmp_path / "token.fifo"
    os.mkfifo(fifo)
    spec = BackendSpec(name="r", type="sse", url="http://h/", auth=AuthSpec(type="bearer", token_file=str(fifo)))
    assert SecretRedactor.from_specs([spec]).scrub("nothing-secret-here") == "nothing-secret-here"


# --------------------------------------------------------------------------- log records


@pytest.fixture
def logged() -> tuple[logging.Logger, io.StringIO]:
    """A real logger writing through a real handler into a buffer, with the filter installed."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    logger = logging.getLogger("tests.config.redaction")
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    install_log_redaction(logger, SecretRedactor([SECRET, TOKEN]))
    return logger, out


def test_the_filter_scrubs_message_arguments_exception_and_stack(logged: tuple[logging.Logger, io.StringIO]) -> None:
    logger, out = logged
    logger.debug("raw headers %r", [(b"www-authenticate", f'Bearer error_description="{TOKEN} bad"'.encode())])
    logger.info("GET %s", URL)
    try:
        raise ValueError(f"server echoed {SECRET}")
    except ValueError:
        logger.exception("failed with %s", TOKEN)
    logger.warning("look at %s", SECRET, stack_info=True)
    text = out.getvalue()
    assert SECRET not in text
    assert TOKEN not in text
    assert text.count(REDACTED) >= 5
    assert "ValueError: server echoed <redacted>" in text  # the traceback is kept, scrubbed


def test_a_record_whose_arguments_do_not_fit_is_still_scrubbed(logged: tuple[logging.Logger, io.StringIO]) -> None:
    logger, out = logged
    logger.error(f"token {TOKEN} and %d", "not a number")
    assert TOKEN not in out.getvalue()
    assert "its arguments did not fit" in out.getvalue()


def test_a_record_that_cannot_be_rendered_is_withheld_not_raised(logged: tuple[logging.Logger, io.StringIO]) -> None:
    class Unprintable:
        def __str__(self) -> str:
            raise RuntimeError(SECRET)

    logger, out = logged
    logger.error(Unprintable())
    assert out.getvalue().strip() == f"ERROR tests.config.redaction: {UNREDACTABLE}"


def test_install_accepts_a_handler_or_handlers() -> None:
    first, second = logging.StreamHandler(io.StringIO()), logging.StreamHandler(io.StringIO())
    redaction = install_log_redaction([first, second], SecretRedactor())
    assert redaction in first.filters
    assert redaction in second.filters
    assert isinstance(install_log_redaction(first, SecretRedactor()), RedactionFilter)


# --------------------------------------------------------------------------- config exits


def test_repr_redacted_and_dump_show_the_url_without_its_credentials(tmp_path: Path) -> None:
    config = _config(tmp_path / "token")
    remote = config.backends[0]
    for text in (repr(remote), str(remote.redacted()), json.dumps(config.dump()), repr(config)):
        assert SECRET not in text
    assert remote.redacted()["url"] == redact_url(URL)
    assert config.dump()["backends"][0]["url"] == redact_url(URL)
    assert remote.redacted_url == redact_url(URL)
    assert config.backends[1].redacted_url is None
