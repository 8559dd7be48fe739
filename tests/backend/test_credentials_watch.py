"""The credentials watch of an auth-required backend: pure value, hypothesis over its steps."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from vmcp_actors.backend.credentials_watch import CredentialsCheckDue, CredentialsWatch, credentials_fingerprint
from vmcp_actors.config.auth import AuthSpec
from vmcp_actors.config.backend_spec import BackendSpec

tokens = st.sampled_from(["", "alpha", "beta"])
steps = st.one_of(
    st.tuples(st.just("lifecycle"), st.booleans()),  # the lifecycle moved: auth_required or not
    st.tuples(st.just("rotate"), tokens),  # the token on disk changed (or not)
    st.tuples(st.just("check"), st.integers(min_value=-1, max_value=0)),  # a check comes due: current, or older
)


def reading(token: str) -> Callable[[], str]:
    """What reading the token file returns right now."""
    return lambda: token


@given(tokens, st.lists(steps, max_size=40))
def test_a_change_is_seen_only_while_watching_and_only_against_the_rejected_token(
    first: str, ops: list[tuple[str, object]]
) -> None:
    watch = CredentialsWatch()
    token = first
    rejected: str | None = None  # the model: the token on disk when auth_required began
    scheduled: list[CredentialsCheckDue] = []
    for op, value in ops:
        if op == "lifecycle":
            watch, due = watch.follow(bool(value), reading(token))
            if value and rejected is None:
                rejected = token
                assert due == CredentialsCheckDue(watch.watch)  # a watch starts with its first check
                scheduled.append(due)
            else:
                assert due is None
            if not value:
                rejected = None
        elif op == "rotate":
            token = str(value)
        else:
            due = CredentialsCheckDue(watch.watch + int(str(value)))
            changed, again = watch.check(due, reading(token))
            current = due.watch == watch.watch and rejected is not None
            assert changed == (current and token != rejected)
            assert (again is not None) == (current and token == rejected)  # keep checking, same watch
            if again is not None:
                assert again.watch == watch.watch
        assert watch.watching == (rejected is not None)
        assert watch.rejected == rejected
    assert all(due.watch <= watch.watch for due in scheduled)


def test_the_fingerprint_is_a_digest_of_the_token_read_now(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    spec = BackendSpec(
        name="api",
        type="streamable-http",
        url="http://127.0.0.1:1/mcp",
        auth=AuthSpec(type="bearer", token_file=str(token_file)),
    )
    assert credentials_fingerprint(spec) == ""  # unreadable: no token
    token_file.write_text("s3cret-alpha\n")
    alpha = credentials_fingerprint(spec)
    assert len(alpha) == 64
    assert "s3cret" not in alpha
    token_file.write_text("s3cret-beta")
    assert credentials_fingerprint(spec) not in ("", alpha)
    assert credentials_fingerprint(BackendSpec(name="plain", command="x")) == ""
