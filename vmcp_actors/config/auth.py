"""Outgoing auth for a remote backend: where its bearer token comes from, never the token itself.

The token is read at connect time from an environment variable or a file (a mounted
Secret), so rotating it needs no config change and no config dump, repr or error
message can contain it.
"""

from __future__ import annotations

import enum
import os
from collections.abc import Mapping
from typing import Final

import attrs

from vmcp_actors.config.fields import key_path, show, unknown_keys
from vmcp_actors.config.files import MAX_TOKEN_FILE_BYTES, UnreadableFileError, read_regular_file
from vmcp_actors.config.reading import MappingReader
from vmcp_actors.errors import ValidationError

__all__ = ["AuthSpec", "AuthType", "parse_auth", "read_token_file"]


class AuthType(enum.StrEnum):
    """The outgoing auth schemes a backend may use."""

    NONE = "none"
    BEARER = "bearer"


def _auth_type(value: object) -> AuthType:
    # Only a string is converted: str() of an alias-bomb list would be gigabytes long.
    if isinstance(value, AuthType):
        return value
    if isinstance(value, str) and value in AuthType.__members__.values():
        return AuthType(value)
    raise ValidationError("auth.type", f"must be none or bearer, got {show(value)}", value)


@attrs.frozen
class AuthSpec:
    """Outgoing auth for a remote backend.

    The bearer token is never written in the config: it is read at connect time from the
    environment variable ``token_env`` or the file ``token_file`` (a mounted Secret), so
    rotating it needs no config change and no config dump can leak it.
    """

    type: AuthType = attrs.field(default=AuthType.NONE, converter=_auth_type)
    token_env: str | None = None
    token_file: str | None = None

    @property
    def configured(self) -> bool:
        """Whether the backend has outgoing auth (toolhive treats its 401/403 as healthy)."""
        return self.type is not AuthType.NONE

    def problems(self, path: str = "") -> list[ValidationError]:
        """Problems with this auth block; ``path`` is the enclosing backend's field path."""
        prefix = f"{path}." if path else ""
        found: list[ValidationError] = []
        if self.type is AuthType.BEARER:
            sources = [s for s in (self.token_env, self.token_file) if s]
            if len(sources) != 1:
                found.append(
                    ValidationError(f"{prefix}auth", "bearer auth needs exactly one of tokenEnv or tokenFile", None)
                )
        elif self.token_env or self.token_file:
            found.append(ValidationError(f"{prefix}auth.type", "tokenEnv/tokenFile need type: bearer", self.type))
        return found

    def resolve_token(self, environ: Mapping[str, str] | None = None) -> str | None:
        """Read the token now; ``None`` without bearer auth.

        Raises:
            ValidationError: when the variable is unset or empty, or the file cannot be
                read or is empty; the message names the source, never a value.
        """
        if self.type is not AuthType.BEARER:
            return None
        env = os.environ if environ is None else environ
        if self.token_env:
            token = env.get(self.token_env, "")
            if not token:
                raise ValidationError("auth.tokenEnv", f"environment variable {self.token_env} is not set or empty")
            return token.strip()
        if self.token_file:
            token = read_token_file(self.token_file)
            if not token:
                raise ValidationError("auth.tokenFile", f"{self.token_file} is empty")
            return token
        return None


def read_token_file(path: str) -> str:
    """The stripped text of a token file; a FIFO, a device or a huge file is refused, not read.

    Raises:
        ValidationError: naming the file and why, never its content.
    """
    try:
        raw = read_regular_file(path, MAX_TOKEN_FILE_BYTES)
    except UnreadableFileError as exc:
        raise ValidationError("auth.tokenFile", f"cannot read {path}: {exc}") from None
    try:
        return raw.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise ValidationError("auth.tokenFile", f"{path} is not UTF-8 text") from None


_AUTH_KEYS: Final = ("type", "tokenEnv", "tokenFile")


def parse_auth(data: object, backend_path: str, found: list[ValidationError]) -> tuple[AuthSpec, bool]:
    """The ``auth`` block under ``backend_path``, and whether it parsed cleanly.

    Problems are appended to ``found``; when the block did not parse cleanly its rule
    checks are skipped, so a typo is reported once and not again as a missing token.
    """
    path = key_path(backend_path, "auth")
    if data is None:
        return AuthSpec(), True
    if not isinstance(data, Mapping):
        found.append(ValidationError(path, f"must be a mapping, got {type(data).__name__}", None))
        return AuthSpec(), False
    unknown = unknown_keys(data, _AUTH_KEYS, path)
    found.extend(unknown)
    reader = MappingReader(data, path, found)
    auth_type = reader.convert("type", _auth_type, AuthType.NONE, prefix=backend_path)
    token_env = reader.string("tokenEnv")
    token_file = reader.string("tokenFile")
    return AuthSpec(type=auth_type, token_env=token_env, token_file=token_file), not (reader.bad or unknown)
