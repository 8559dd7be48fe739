"""Backend configuration: ``BackendSpec`` and its auth, validation and change detection.

The rules are muster's (``ValidateConfiguration`` messages, ``ConfigurationChanged``
semantics), so a config that muster accepts behaves the same here.  Two things are
stricter: URLs and timeouts are sanity-checked at validation rather than failing at the
first connect, and secrets (header values, env values, tokens) are redacted from every
``repr`` and log line, because a config object ends up in tracebacks and debug logs.
"""

from __future__ import annotations

import enum
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

import attrs

from vmcp_actors.errors import ValidationError

__all__ = [
    "DEFAULT_REMOTE_TIMEOUT",
    "DEFAULT_STDIO_START_TIMEOUT",
    "AuthSpec",
    "AuthType",
    "BackendSpec",
    "TransportType",
    "redact",
]

#: muster's ``DefaultRemoteTimeout`` (seconds), also the CRD default of ``spec.timeout``.
DEFAULT_REMOTE_TIMEOUT: Final = 30.0
#: muster's ``DefaultStdioInitTimeout`` (seconds): stdio ignores ``timeout``.
DEFAULT_STDIO_START_TIMEOUT: Final = 10.0
#: No sane MCP connect takes longer; a larger value is almost always a unit mistake (ms).
MAX_TIMEOUT: Final = 3600.0
REDACTED: Final = "<redacted>"
_NAME_PATTERN: Final = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9._-]{0,251}[A-Za-z0-9])?$")


class TransportType(enum.StrEnum):
    STDIO = "stdio"
    STREAMABLE_HTTP = "streamable-http"
    SSE = "sse"

    @property
    def remote(self) -> bool:
        """muster's ``IsRemote``: everything but stdio."""
        return self is not TransportType.STDIO


class AuthType(enum.StrEnum):
    NONE = "none"
    BEARER = "bearer"


def _transport(value: object) -> TransportType:
    try:
        return TransportType(str(value))
    except ValueError:
        raise ValidationError(
            "type", f"unsupported MCP server type: {value!r} (expected stdio, streamable-http or sse)", value
        ) from None


def _pairs(value: object) -> tuple[tuple[str, str], ...]:
    """Freeze a mapping into sorted pairs, so missing and empty compare equal (muster)."""
    if value is None:
        return ()
    items: Iterable[Any]
    if isinstance(value, Mapping):
        items = value.items()
    elif isinstance(value, (list, tuple)):
        items = value
    else:
        raise TypeError(f"expected a mapping, got {type(value).__name__}")
    return tuple(sorted((str(k), str(v)) for k, v in items))


def _args(value: object) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise TypeError(f"expected a list of strings, got {type(value).__name__}")
    return tuple(str(v) for v in value)


def redact(pairs: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Keys kept, values hidden: enough to debug which variables are set, nothing to leak."""
    return {key: REDACTED for key, _ in pairs}


def _auth_type(value: object) -> AuthType:
    try:
        return AuthType(str(value))
    except ValueError:
        raise ValidationError("auth.type", f"must be none or bearer, got {value!r}", value) from None


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
        """Read the token now; errors name the source, never the value."""
        if self.type is not AuthType.BEARER:
            return None
        env = os.environ if environ is None else environ
        if self.token_env:
            token = env.get(self.token_env, "")
            if not token:
                raise ValidationError("auth.tokenEnv", f"environment variable {self.token_env} is not set or empty")
            return token.strip()
        if self.token_file:
            try:
                token = Path(self.token_file).read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise ValidationError("auth.tokenFile", f"cannot read {self.token_file}: {exc.strerror}") from None
            if not token:
                raise ValidationError("auth.tokenFile", f"{self.token_file} is empty")
            return token
        return None


def _auth(value: object) -> AuthSpec:
    if value is None:
        return AuthSpec()
    if isinstance(value, AuthSpec):
        return value
    raise TypeError(f"expected an AuthSpec, got {type(value).__name__}")


@attrs.frozen(repr=False)
class BackendSpec:
    """One MCP backend, as configured.  Immutable: a change is a new spec.

    Collections are stored frozen and sorted, which makes "missing" and "empty" the same
    value, as muster's ``ConfigurationChanged`` requires.
    """

    name: str
    type: TransportType = attrs.field(default=TransportType.STDIO, converter=_transport)
    command: str | None = None
    args: tuple[str, ...] = attrs.field(default=(), converter=_args)
    env: tuple[tuple[str, str], ...] = attrs.field(default=(), converter=_pairs)
    url: str | None = None
    headers: tuple[tuple[str, str], ...] = attrs.field(default=(), converter=_pairs)
    timeout: float | None = None
    auto_start: bool = True
    tool_prefix: str = ""
    description: str = ""
    auth: AuthSpec = attrs.field(factory=AuthSpec, converter=_auth)
    cwd: str | None = None

    # ------------------------------------------------------------------ derived

    @property
    def remote(self) -> bool:
        return self.type.remote

    @property
    def connect_timeout(self) -> float:
        """muster: stdio always 10 s; remote the spec's timeout, or 30 s when unset/0."""
        if not self.remote:
            return DEFAULT_STDIO_START_TIMEOUT
        return self.timeout if self.timeout else DEFAULT_REMOTE_TIMEOUT

    def env_dict(self) -> dict[str, str]:
        return dict(self.env)

    def headers_dict(self) -> dict[str, str]:
        return dict(self.headers)

    # ------------------------------------------------------------------ validation

    def problems(self, path: str = "") -> list[ValidationError]:
        """Every problem with this spec; each error's field is ``path.field``."""
        prefix = f"{path}." if path else ""
        found: list[ValidationError] = []
        if not self.name:
            found.append(ValidationError(f"{prefix}name", "name is required", self.name))
        elif not _NAME_PATTERN.match(self.name):
            found.append(
                ValidationError(
                    f"{prefix}name",
                    "must be 1-253 letters, digits, '.', '_' or '-', starting and ending with a letter or digit",
                    self.name,
                )
            )
        if self.type is TransportType.STDIO:
            if not self.command:
                found.append(ValidationError(f"{prefix}command", "command is required for stdio type", None))
        else:
            found.extend(self._url_problems(prefix))
        if self.timeout is not None and not (0 <= self.timeout <= MAX_TIMEOUT):
            found.append(
                ValidationError(
                    f"{prefix}timeout",
                    f"must be between 0 and {MAX_TIMEOUT:g} seconds, got {self.timeout}",
                    self.timeout,
                )
            )
        found.extend(self.auth.problems(path))
        if self.auth.configured and not self.remote:
            found.append(ValidationError(f"{prefix}auth", "outgoing auth applies to remote backends only", None))
        return found

    def _url_problems(self, prefix: str) -> list[ValidationError]:
        if not self.url:
            return [ValidationError(f"{prefix}url", "url is required for streamable-http and sse types", None)]
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https"):
            return [ValidationError(f"{prefix}url", f"must be an http or https URL, got scheme {parts.scheme!r}", None)]
        if not parts.hostname:
            return [ValidationError(f"{prefix}url", "must name a host", None)]
        try:
            parts.port  # noqa: B018 - raises ValueError on a malformed port
        except ValueError:
            return [ValidationError(f"{prefix}url", "has an invalid port", None)]
        return []

    def validate(self, path: str = "") -> BackendSpec:
        """Raise the first problem (muster's order); return self so calls chain."""
        found = self.problems(path)
        if found:
            raise found[0]
        return self

    # ------------------------------------------------------------------ change detection

    def config_changed(self, new: object) -> bool:
        """Whether moving to ``new`` needs a restart (muster ``ConfigurationChanged``).

        Anything that is not a ``BackendSpec`` counts as a change.  ``auto_start``
        matters only from false to true; ``description`` never does.
        """
        if not isinstance(new, BackendSpec):
            return True
        if (self.url, self.command, self.type) != (new.url, new.command, new.type):
            return True
        if not self.auto_start and new.auto_start:
            return True
        return (self.args, self.env, self.headers, self.timeout, self.tool_prefix, self.auth, self.cwd) != (
            new.args,
            new.env,
            new.headers,
            new.timeout,
            new.tool_prefix,
            new.auth,
            new.cwd,
        )

    # ------------------------------------------------------------------ presentation

    def redacted(self) -> dict[str, Any]:
        """muster's service data, with env and header values hidden."""
        data: dict[str, Any] = {
            "name": self.name,
            "type": str(self.type),
            "autoStart": self.auto_start,
            "timeout": self.timeout,
            "description": self.description,
            "toolPrefix": self.tool_prefix,
        }
        if self.command:
            data["command"] = self.command
            data["args"] = list(self.args)
        if self.url:
            data["url"] = self.url
        if self.env:
            data["env"] = redact(self.env)
        if self.headers:
            data["headers"] = redact(self.headers)
        if self.auth.configured:
            data["auth"] = {
                "type": str(self.auth.type),
                "tokenEnv": self.auth.token_env,
                "tokenFile": self.auth.token_file,
            }
        return data

    def __repr__(self) -> str:
        fields = ", ".join(f"{key}={value!r}" for key, value in self.redacted().items())
        return f"BackendSpec({fields})"
