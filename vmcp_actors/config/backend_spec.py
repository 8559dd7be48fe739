"""Backend configuration: ``BackendSpec``, its validation, change detection and parsing.

What its fields may hold (transports, timeout defaults, size and name bounds) is in
:mod:`~vmcp_actors.config.backend_values`.

The rules are muster's (``ValidateConfiguration`` messages, ``ConfigurationChanged``
semantics), so a config that muster accepts behaves the same here.  Three things
differ: URLs and timeouts are sanity-checked at validation rather than failing at the
first connect; secrets (header values, env values, tokens, a URL's user-info and query
values) are redacted from every ``repr``, dump and log line, because a config object
ends up in tracebacks and debug logs; and ``timeout`` bounds the handshake of every
transport, stdio included (muster fixes stdio at 10 s).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final
from urllib.parse import urlsplit

import attrs

from vmcp_actors.config.auth import AuthSpec, parse_auth
from vmcp_actors.config.backend_values import (
    DEFAULT_CONNECT_TIMEOUT,
    MAX_RESPONSE_BYTES,
    MAX_TIMEOUT,
    MIN_RESPONSE_BYTES,
    NAME_PATTERN,
    NAME_RULE,
    TransportType,
    frozen_args,
    frozen_pairs,
    transport_type,
)
from vmcp_actors.config.fields import ROOT_FIELD, show, unknown_keys
from vmcp_actors.config.reading import MappingReader
from vmcp_actors.config.redaction import REDACTED, redact_url
from vmcp_actors.errors import ConfigError, ValidationError

__all__ = ["BackendSpec", "backend_rule_problems", "parse_backend", "redact"]


def redact(pairs: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Keys kept, values hidden: enough to debug which variables are set, nothing to leak."""
    return {key: REDACTED for key, _ in pairs}


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
    type: TransportType = attrs.field(default=TransportType.STDIO, converter=transport_type)
    command: str | None = None
    args: tuple[str, ...] = attrs.field(default=(), converter=frozen_args)
    env: tuple[tuple[str, str], ...] = attrs.field(default=(), converter=frozen_pairs)
    url: str | None = None
    headers: tuple[tuple[str, str], ...] = attrs.field(default=(), converter=frozen_pairs)
    timeout: float | None = None
    auto_start: bool = True
    tool_prefix: str = ""
    description: str = ""
    auth: AuthSpec = attrs.field(factory=AuthSpec, converter=_auth)
    cwd: str | None = None
    max_response_bytes: int | None = None

    # ------------------------------------------------------------------ derived

    @property
    def remote(self) -> bool:
        """Whether the backend is reached over HTTP rather than a child process."""
        return self.type.remote

    @property
    def connect_timeout(self) -> float:
        """How long the handshake (start, ``initialize``, ``tools/list``) may take, for every transport.

        The spec's ``timeout``, or ``DEFAULT_CONNECT_TIMEOUT`` (30 s) when it is unset or 0.
        Unlike muster, stdio honours ``timeout`` too: a server that needs 12 s to start
        can be given them.
        """
        return self.timeout if self.timeout else DEFAULT_CONNECT_TIMEOUT

    @property
    def redacted_url(self) -> str | None:
        """The URL as it may be shown anywhere: user-info and query values masked."""
        return redact_url(self.url) if self.url else None

    # ------------------------------------------------------------------ validation

    def problems(self, path: str = "") -> list[ValidationError]:
        """Every problem with this spec; each error's field is ``path.field``."""
        prefix = f"{path}." if path else ""
        found: list[ValidationError] = []
        if not self.name:
            found.append(ValidationError(f"{prefix}name", "name is required", self.name))
        elif not NAME_PATTERN.match(self.name):
            found.append(ValidationError(f"{prefix}name", NAME_RULE, self.name))
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
        if self.max_response_bytes is not None and not (
            not isinstance(self.max_response_bytes, bool)
            and isinstance(self.max_response_bytes, int)
            and MIN_RESPONSE_BYTES <= self.max_response_bytes <= MAX_RESPONSE_BYTES
        ):
            found.append(
                ValidationError(
                    f"{prefix}maxResponseBytes",
                    f"must be a number of bytes between {MIN_RESPONSE_BYTES} and {MAX_RESPONSE_BYTES}, "
                    f"got {show(self.max_response_bytes)}",
                    self.max_response_bytes,
                )
            )
        found.extend(self.auth.problems(path))
        if self.auth.configured and not self.remote:
            found.append(ValidationError(f"{prefix}auth", "outgoing auth applies to remote backends only", None))
        return found

    def _url_problems(self, prefix: str) -> list[ValidationError]:
        if not self.url:
            return [ValidationError(f"{prefix}url", "url is required for streamable-http and sse types", None)]
        try:
            parts = urlsplit(self.url)
        except ValueError:
            return [ValidationError(f"{prefix}url", "is not a valid URL", None)]
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
        """Raise the first problem (muster's order); return self so calls chain.

        Raises:
            ValidationError: the first of :meth:`problems`.
        """
        found = self.problems(path)
        if found:
            raise found[0]
        return self

    # ------------------------------------------------------------------ change detection

    def config_changed(self, new: object) -> bool:
        """Whether moving to ``new`` needs a restart (muster ``ConfigurationChanged``).

        Anything that is not a ``BackendSpec`` counts as a change.  ``auto_start``
        matters only from false to true; ``description`` never does, nor ``tool_prefix``
        (muster restarts for it; here the data plane renames the live backend's tools).
        """
        if not isinstance(new, BackendSpec):
            return True
        if (self.url, self.command, self.type) != (new.url, new.command, new.type):
            return True
        if not self.auto_start and new.auto_start:
            return True
        return (
            self.args,
            self.env,
            self.headers,
            self.timeout,
            self.auth,
            self.cwd,
            self.max_response_bytes,
        ) != (
            new.args,
            new.env,
            new.headers,
            new.timeout,
            new.auth,
            new.cwd,
            new.max_response_bytes,
        )

    # ------------------------------------------------------------------ presentation

    def redacted(self) -> dict[str, Any]:
        """Muster's service data, with env and header values and the URL's credentials hidden."""
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
            data["url"] = redact_url(self.url)
        if self.env:
            data["env"] = redact(self.env)
        if self.headers:
            data["headers"] = redact(self.headers)
        if self.max_response_bytes is not None:
            data["maxResponseBytes"] = self.max_response_bytes
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

    # ------------------------------------------------------------------ construction

    @classmethod
    def from_dict(cls, data: object, path: str = "") -> BackendSpec:
        """Build a spec from the keys users write in YAML (``autoStart``, ``toolPrefix``...).

        Parsing and validation together, so the result is always usable.

        Raises:
            ConfigError: listing every problem, each field named under ``path``.
        """
        found: list[ValidationError] = []
        parsed = parse_backend(data, path, found)
        if parsed is not None:
            found.extend(backend_rule_problems(parsed[0], path, parsed[1]))
        if found or parsed is None:
            raise ConfigError(found)
        return parsed[0]


# --------------------------------------------------------------------------- parsing

_BACKEND_KEYS: Final = (
    "name",
    "type",
    "command",
    "args",
    "env",
    "url",
    "headers",
    "timeout",
    "autoStart",
    "auto_start",
    "toolPrefix",
    "description",
    "cwd",
    "auth",
    "maxResponseBytes",
)


def _transport_of(reader: MappingReader) -> TransportType:
    if reader.data.get("type") is None:
        reader.fail("type", "type is required (stdio, streamable-http or sse)")
        return TransportType.STDIO
    return reader.convert("type", transport_type, TransportType.STDIO)


def _url_of(reader: MappingReader) -> str | None:
    url = reader.string("url")
    if url is not None:
        try:
            urlsplit(url)
        except ValueError:
            # BackendSpec's URL checks assume urlsplit succeeds; catch what it cannot parse.
            reader.fail("url", "is not a valid URL")
            return None
    return url


def _byte_count(value: object) -> int:
    """An integer number of bytes (its range is a rule, checked with the others)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError("maxResponseBytes", f"must be an integer number of bytes, got {show(value)}", None)
    return value


def _auto_start_of(reader: MappingReader) -> bool:
    if "autoStart" in reader.data and "auto_start" in reader.data:
        reader.fail("auto_start", "duplicates autoStart: write only one of them")
    return reader.boolean("autoStart" if "autoStart" in reader.data else "auto_start", True)


def parse_backend(data: object, path: str, found: list[ValidationError]) -> tuple[BackendSpec, frozenset[str]] | None:
    """One backend entry: the spec (fallbacks in place of bad values) and the fields to skip.

    Problems are appended to ``found``.  The skipped fields are those whose values
    failed to parse, so :func:`backend_rule_problems` does not report them twice.
    ``None`` when the entry is not a mapping at all, so there is nothing to check further.
    """
    if not isinstance(data, Mapping):
        found.append(ValidationError(path or ROOT_FIELD, f"must be a mapping, got {type(data).__name__}", None))
        return None
    found.extend(unknown_keys(data, _BACKEND_KEYS, path))
    reader = MappingReader(data, path, found)
    # Read in this order so the problems are listed in it: identity first, then the rest.
    name = reader.string("name") or ""
    transport = _transport_of(reader)
    url = _url_of(reader)
    auto_start = _auto_start_of(reader)
    auth, auth_ok = parse_auth(data.get("auth"), path, found)
    spec = BackendSpec(
        name=name,
        type=transport,
        command=reader.string("command"),
        args=reader.strings("args"),
        env=reader.secret_map("env", forbidden="\x00"),
        url=url,
        headers=reader.secret_map("headers", forbidden="\x00\r\n"),
        timeout=reader.optional_duration("timeout"),
        auto_start=auto_start,
        tool_prefix=reader.string("toolPrefix") or "",
        description=reader.string("description") or "",
        auth=auth,
        cwd=reader.string("cwd"),
        max_response_bytes=reader.convert("maxResponseBytes", _byte_count, None),
    )
    skip = set(reader.bad)
    if "type" in skip:
        # The type decides which of these are required; with it unknown, their rules cannot apply.
        skip |= {"command", "url", "auth"}
    if not auth_ok:
        skip |= {"auth", "auth.type"}
    return spec, frozenset(f"{path}.{key}" if path else key for key in skip)


def backend_rule_problems(spec: BackendSpec, path: str, skip: frozenset[str]) -> list[ValidationError]:
    """The spec's rule problems under ``path``, leaving out the fields in ``skip``."""
    return [problem for problem in spec.problems(path) if problem.field not in skip]
