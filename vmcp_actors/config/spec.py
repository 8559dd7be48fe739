"""Backend configuration: ``BackendSpec`` and its auth, validation and change detection.

The rules are muster's (``ValidateConfiguration`` messages, ``ConfigurationChanged``
semantics), so a config that muster accepts behaves the same here.  Two things are
stricter: URLs and timeouts are sanity-checked at validation rather than failing at the
first connect, and secrets (header values, env values, tokens) are redacted from every
``repr`` and log line, because a config object ends up in tracebacks and debug logs.
"""

from __future__ import annotations

import difflib
import enum
import json
import math
import os
import re
import sys
from collections.abc import Callable, Iterable, Mapping
from fractions import Fraction
from pathlib import Path
from typing import Any, Final, TypeVar
from urllib.parse import urlsplit

import attrs
import yaml

from vmcp_actors.config.aggregation import AggregationConfig, parse_aggregation
from vmcp_actors.errors import ConfigError, ValidationError
from vmcp_actors.health.rules import (
    DEFAULT_CHECK_INTERVAL,
    DEFAULT_DEGRADED_THRESHOLD,
    DEFAULT_TIMEOUT,
    DEFAULT_UNHEALTHY_THRESHOLD,
    CircuitBreakerConfig,
    HealthConfig,
)

__all__ = [
    "DEFAULT_REMOTE_TIMEOUT",
    "DEFAULT_STATUS_REPORTING_INTERVAL",
    "DEFAULT_STDIO_START_TIMEOUT",
    "AuthSpec",
    "AuthType",
    "BackendSpec",
    "ConfigError",
    "FailureHandling",
    "PartialFailureMode",
    "RuntimeConfig",
    "TransportType",
    "format_duration",
    "parse_duration",
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

    # ------------------------------------------------------------------ construction

    @classmethod
    def from_dict(cls, data: object, path: str = "") -> BackendSpec:
        """Build a spec from the keys users write in YAML (``autoStart``, ``toolPrefix``...).

        Parsing and validation together, so the result is always usable; otherwise a
        ``ConfigError`` lists every problem, each field named under ``path``.
        """
        return _backend_from_dict(data, path)


# =========================================================================== runtime configuration
#
# The file a user writes (YAML or JSON, toolhive's camelCase keys) and the one place it
# is read.  Every problem is collected with its field path, so one run shows everything
# to fix, and no input -- however malformed -- escapes as anything but ``ConfigError``.

_T = TypeVar("_T")

#: ``problem.field`` for problems with the file itself (unreadable, syntax) ...
FILE_FIELD: Final = "(file)"
#: ... and for a document or mapping that is not a mapping at all.
ROOT_FIELD: Final = "(root)"

#: toolhive's ``statusReportingInterval`` default (``config/defaults.go``, seconds).
DEFAULT_STATUS_REPORTING_INTERVAL: Final = 30.0

# --------------------------------------------------------------------------- durations

#: The CRD's duration pattern (toolhive): number-unit terms, no sign, no spaces.
_DURATION_PATTERN: Final = re.compile(r"([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+")
_DURATION_TERM: Final = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ns|us|µs|ms|s|m|h)")
_BARE_NUMBER: Final = re.compile(r"[0-9]+(\.[0-9]+)?")
_NS_PER_UNIT: Final = {"ns": 1, "us": 10**3, "µs": 10**3, "ms": 10**6, "s": 10**9, "m": 60 * 10**9, "h": 3600 * 10**9}
_NS_PER_SECOND: Final = 10**9
#: Go's ``time.Duration`` is int64 nanoseconds: nothing longer exists on toolhive's side.
MAX_DURATION_NS: Final = 2**63 - 1
_MAX_DURATION_TEXT: Final = "2562047h47m16.854775807s"
#: Longer duration strings are nonsense; the cap also bounds the exact arithmetic below.
_MAX_DURATION_CHARS: Final = 64
_DURATION_HINT: Final = "a Go duration such as '30s', '1m30s' or '500ms' (units ns, us, µs, ms, s, m, h)"


def _show(value: object, limit: int = 60) -> str:
    """A value for an error message: its repr, cut short so one bad value cannot flood it."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _describe(value: object) -> str:
    return f"{type(value).__name__} {_show(value)}"


def parse_duration(text: object, field: str) -> float:
    """Seconds from a Go-style duration string (``1m30s``) or a plain number of seconds.

    Strings must match the CRD pattern exactly, so a file accepted here is accepted by
    the toolhive operator too: no sign, no spaces, a unit on every term.  Numbers are
    this project's convenience and are passed through (negative ones included) so the
    range rule of the field they feed -- which exists once, in that field's validator --
    reports them.  Both forms are bounded by Go's int64-nanosecond range.
    """
    if isinstance(text, bool) or not isinstance(text, (str, int, float)):
        raise ValidationError(field, f"must be {_DURATION_HINT} or a number of seconds, got {_describe(text)}", text)
    if isinstance(text, int):
        if abs(text) * _NS_PER_SECOND > MAX_DURATION_NS:
            raise ValidationError(field, f"is out of range (at most {_MAX_DURATION_TEXT}), got {_show(text)}", text)
        return float(text)
    if isinstance(text, float):
        if not math.isfinite(text):
            raise ValidationError(field, f"must be a finite number of seconds, got {text}", text)
        if abs(text) * _NS_PER_SECOND > MAX_DURATION_NS:
            raise ValidationError(field, f"is out of range (at most {_MAX_DURATION_TEXT}), got {text}", text)
        return text
    if not text:
        raise ValidationError(field, f"must not be empty: write {_DURATION_HINT}", text)
    if len(text) > _MAX_DURATION_CHARS or not _DURATION_PATTERN.fullmatch(text):
        if _BARE_NUMBER.fullmatch(text):
            message = f"duration {_show(text)} has no unit: write {text}s, or the number {text} without quotes"
        else:
            message = f"invalid duration {_show(text)}: expected {_DURATION_HINT}"
        raise ValidationError(field, message, text)
    # Exact arithmetic, so "0.1s" + "0.2s" style sums round once, at the very end.
    total = sum(
        (Fraction(number) * _NS_PER_UNIT[unit] for number, unit in _DURATION_TERM.findall(text)),
        start=Fraction(0),
    )
    if total > MAX_DURATION_NS:
        raise ValidationError(field, f"is out of range (at most {_MAX_DURATION_TEXT}), got {_show(text)}", text)
    return float(total / _NS_PER_SECOND)


def _fraction_text(value: int, digits: int) -> str:
    """``value / 10**digits`` in decimal with trailing zeros dropped (Go's ``fmtFrac``)."""
    whole, fraction = divmod(value, 10**digits)
    return f"{whole}.{fraction:0{digits}d}".rstrip("0") if fraction else str(whole)


def format_duration(seconds: float) -> str:
    """Go's ``time.Duration.String()`` for ``seconds``, rounded to the nanosecond.

    Used wherever a duration is shown back to the user (``--debug`` dumps, messages), so
    it reads the way they write it: ``1m30s``, ``500ms``, ``1h0m0s``.
    """
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not math.isfinite(seconds):
        raise ValueError(f"cannot format {seconds!r} as a duration")
    ns = round(Fraction(seconds) * _NS_PER_SECOND)
    sign = "-" if ns < 0 else ""
    ns = abs(ns)
    if ns == 0:
        return "0s"
    if ns < 10**3:
        return f"{sign}{ns}ns"
    if ns < 10**6:
        return f"{sign}{_fraction_text(ns, 3)}µs"
    if ns < 10**9:
        return f"{sign}{_fraction_text(ns, 6)}ms"
    whole_seconds, fraction = divmod(ns, _NS_PER_SECOND)
    hours, rest = divmod(whole_seconds, 3600)
    minutes, secs = divmod(rest, 60)
    text = f"{_fraction_text(secs * _NS_PER_SECOND + fraction, 9)}s"
    if hours:
        return f"{sign}{hours}h{minutes}m{text}"
    if minutes:
        return f"{sign}{minutes}m{text}"
    return f"{sign}{text}"


# --------------------------------------------------------------------------- reading mappings

_SIMPLE_KEY: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")


def _key_path(path: str, key: object) -> str:
    """The field path of ``key`` under ``path``; odd keys are quoted so the path stays readable."""
    if isinstance(key, str) and _SIMPLE_KEY.fullmatch(key):
        return f"{path}.{key}" if path else key
    return f"{path}[{_show(key)}]"


def _repath(error: ValidationError, prefix: str) -> ValidationError:
    """The same problem with its field moved under ``prefix`` (``timeout`` -> ``backends[0].timeout``)."""
    head = f"{error.field}: "
    text = str(error)
    message = text[len(head) :] if text.startswith(head) else text
    field = f"{prefix}.{error.field}" if prefix else error.field
    return ValidationError(field, message, error.value)


def _attempt(found: list[ValidationError], prefix: str, build: Callable[[], _T]) -> _T | None:
    """Run a validating constructor; record its error under ``prefix`` instead of raising."""
    try:
        return build()
    except ValidationError as exc:
        found.append(_repath(exc, prefix))
        return None


def _unknown_keys(data: Mapping[Any, Any], known: tuple[str, ...], path: str) -> list[ValidationError]:
    """One problem per key the schema does not have, with the closest known key as a hint.

    Unknown keys are errors rather than warnings because the usual cause is a typo
    (``urll``), and a silently ignored typo leaves a default the user did not choose.
    """
    found: list[ValidationError] = []
    for key in data:
        if isinstance(key, str) and key in known:
            continue
        close = difflib.get_close_matches(str(key), known, n=1, cutoff=0.6)
        hint = f"did you mean {close[0]!r}?" if close else f"known keys: {', '.join(known)}"
        found.append(ValidationError(_key_path(path, key), f"unknown key ({hint})", None))
    return found


def _is_list(value: object) -> bool:
    return isinstance(value, (list, tuple))


class _Reader:
    """Reads one mapping's known keys, recording a problem for each value of the wrong shape.

    Every getter returns a usable fallback after a problem, so the other keys are still
    checked, and remembers the key in ``bad`` so the rule checks that run afterwards skip
    it: a field gets one problem, not a parse error plus a rule error about the fallback.
    """

    def __init__(self, data: Mapping[Any, Any], path: str, found: list[ValidationError]) -> None:
        self.data = data
        self.path = path
        self.found = found
        self.bad: set[str] = set()

    def field(self, key: str) -> str:
        return _key_path(self.path, key)

    def fail(self, key: str, message: str, value: object = None, *, field: str | None = None) -> None:
        self.found.append(ValidationError(field or self.field(key), message, value))
        self.bad.add(key)

    def string(self, key: str) -> str | None:
        value = self.data.get(key)
        if value is None:
            return None
        if not isinstance(value, str):
            self.fail(key, f"must be a string, got {_describe(value)}", value)
            return None
        if "\x00" in value:
            # A NUL cannot reach a process argument, path or header; fail here, not at spawn.
            self.fail(key, "must not contain a NUL character", value)
            return None
        return value

    def boolean(self, key: str, default: bool) -> bool:
        value = self.data.get(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            self.fail(key, f"must be true or false, got {_describe(value)}", value)
            return default
        return value

    def duration(self, key: str, default: float) -> float:
        found = self.optional_duration(key)
        return default if found is None else found

    def optional_duration(self, key: str) -> float | None:
        value = self.data.get(key)
        if value is None:
            return None
        try:
            return parse_duration(value, self.field(key))
        except ValidationError as exc:
            self.found.append(exc)
            self.bad.add(key)
            return None

    def convert(self, key: str, converter: Callable[[Any], _T], default: _T, prefix: str | None = None) -> _T:
        """Use a converter that raises ``ValidationError`` (the enums), re-pathing its error."""
        value = self.data.get(key)
        if value is None:
            return default
        try:
            return converter(value)
        except ValidationError as exc:
            self.found.append(_repath(exc, self.path if prefix is None else prefix))
            self.bad.add(key)
            return default

    def strings(self, key: str) -> tuple[str, ...]:
        """A list of strings (``args``); elements that are not strings are named by index."""
        value = self.data.get(key)
        if value is None:
            return ()
        if not _is_list(value):
            self.fail(key, f"must be a list of strings, got {type(value).__name__}", None)
            return ()
        items: list[str] = []
        for index, item in enumerate(value):
            field = f"{self.field(key)}[{index}]"
            if not isinstance(item, str):
                self.fail(key, f"must be a string, got {type(item).__name__}", None, field=field)
            elif "\x00" in item:
                self.fail(key, "must not contain a NUL character", None, field=field)
            else:
                items.append(item)
        return tuple(items) if key not in self.bad else ()

    def secret_map(self, key: str, *, forbidden: str) -> tuple[tuple[str, str], ...]:
        """A string-to-string mapping whose values are secrets (``env``, ``headers``).

        Problems name the entry and the value's type, never the value, and carry no
        ``value``: these errors end up in logs.  ``forbidden`` lists characters the
        value cannot contain (NUL for env, line breaks too for headers).
        """
        value = self.data.get(key)
        if value is None:
            return ()
        if not isinstance(value, Mapping):
            self.fail(key, f"must be a mapping of names to strings, got {type(value).__name__}", None)
            return ()
        pairs: list[tuple[str, str]] = []
        for name, item in value.items():
            field = _key_path(self.field(key), name)
            if not isinstance(name, str) or not name:
                self.fail(key, f"names must be non-empty strings, got {_describe(name)}", None, field=field)
            elif any(char in name for char in "=\x00\r\n"):
                self.fail(key, "name must not contain '=', NUL or line breaks", None, field=field)
            elif not isinstance(item, str):
                hint = " (quote numbers and booleans in YAML)" if isinstance(item, (bool, int, float)) else ""
                self.fail(key, f"must be a string{hint}, got {type(item).__name__}", None, field=field)
            elif any(char in item for char in forbidden):
                self.fail(key, "value must not contain NUL or line-break characters", None, field=field)
            else:
                pairs.append((name, item))
        return tuple(pairs) if key not in self.bad else ()


# --------------------------------------------------------------------------- backends

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
)
_AUTH_KEYS: Final = ("type", "tokenEnv", "tokenFile")


def _parse_auth(data: object, backend_path: str, found: list[ValidationError]) -> tuple[AuthSpec, bool]:
    """The ``auth`` block, and whether it parsed cleanly (if not, its rule checks are skipped)."""
    path = _key_path(backend_path, "auth")
    if data is None:
        return AuthSpec(), True
    if not isinstance(data, Mapping):
        found.append(ValidationError(path, f"must be a mapping, got {type(data).__name__}", None))
        return AuthSpec(), False
    unknown = _unknown_keys(data, _AUTH_KEYS, path)
    found.extend(unknown)
    reader = _Reader(data, path, found)
    auth_type = reader.convert("type", _auth_type, AuthType.NONE, prefix=backend_path)
    token_env = reader.string("tokenEnv")
    token_file = reader.string("tokenFile")
    return AuthSpec(type=auth_type, token_env=token_env, token_file=token_file), not (reader.bad or unknown)


def _parse_backend(data: object, path: str, found: list[ValidationError]) -> tuple[BackendSpec, frozenset[str]] | None:
    """One backend entry: the spec (fallbacks in place of bad values) and the fields to skip.

    ``None`` when the entry is not a mapping at all, so there is nothing to check further.
    """
    if not isinstance(data, Mapping):
        found.append(ValidationError(path or ROOT_FIELD, f"must be a mapping, got {type(data).__name__}", None))
        return None
    found.extend(_unknown_keys(data, _BACKEND_KEYS, path))
    reader = _Reader(data, path, found)
    name = reader.string("name") or ""
    if data.get("type") is None:
        reader.fail("type", "type is required (stdio, streamable-http or sse)")
        transport = TransportType.STDIO
    else:
        transport = reader.convert("type", _transport, TransportType.STDIO)
    url = reader.string("url")
    if url is not None:
        try:
            urlsplit(url)
        except ValueError:
            # BackendSpec's URL checks assume urlsplit succeeds; catch what it cannot parse.
            reader.fail("url", "is not a valid URL")
            url = None
    if "autoStart" in data and "auto_start" in data:
        reader.fail("auto_start", "duplicates autoStart: write only one of them")
    auto_start = reader.boolean("autoStart" if "autoStart" in data else "auto_start", True)
    auth, auth_ok = _parse_auth(data.get("auth"), path, found)
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
    )
    skip = set(reader.bad)
    if "type" in skip:
        # The type decides which of these are required; with it unknown, their rules cannot apply.
        skip |= {"command", "url", "auth"}
    if not auth_ok:
        skip |= {"auth", "auth.type"}
    return spec, frozenset(f"{path}.{key}" if path else key for key in skip)


def _backend_rule_problems(spec: BackendSpec, path: str, skip: frozenset[str]) -> list[ValidationError]:
    return [problem for problem in spec.problems(path) if problem.field not in skip]


def _backend_from_dict(data: object, path: str) -> BackendSpec:
    found: list[ValidationError] = []
    parsed = _parse_backend(data, path, found)
    if parsed is not None:
        found.extend(_backend_rule_problems(parsed[0], path, parsed[1]))
    if found or parsed is None:
        raise ConfigError(found)
    return parsed[0]


# --------------------------------------------------------------------------- failure handling


class PartialFailureMode(enum.StrEnum):
    """toolhive's ``partialFailureMode``: whether one failed backend fails a request."""

    FAIL = "fail"
    BEST_EFFORT = "best_effort"


def _partial_failure_mode(value: object) -> PartialFailureMode:
    try:
        return PartialFailureMode(value) if isinstance(value, str) else PartialFailureMode("\x00")
    except ValueError:
        raise ValidationError(
            "partialFailureMode", f"must be fail or best_effort, got {_describe(value)}", value
        ) from None


#: Marks a value whose parse already failed: the rules that need it are not checked.
_SKIP: Final = object()


def _health_rule_problems(path: str, interval: Any, timeout: Any, threshold: Any) -> list[ValidationError]:
    """toolhive's failure-handling rules, delegated to ``HealthConfig`` so each exists once.

    ``HealthConfig`` stops at its first error; to report all of them each value is
    checked in a config where everything else is valid.  The timeout is checked against
    the real interval when that is valid, and otherwise against the largest float, so a
    bad interval does not also produce a misleading "timeout must be less than" error.
    """
    found: list[ValidationError] = []
    interval_ok = False
    if interval is not _SKIP:
        checked = _attempt(found, path, lambda: HealthConfig(check_interval=interval, timeout=0.0))
        interval_ok = checked is not None
    if timeout is not _SKIP:
        reference = interval if interval_ok else sys.float_info.max
        _attempt(found, path, lambda: HealthConfig(check_interval=reference, timeout=timeout))
    if threshold is not _SKIP:
        _attempt(found, path, lambda: HealthConfig(unhealthy_threshold=threshold))
    return found


def _reporting_interval_problems(path: str, value: Any) -> list[ValidationError]:
    """``statusReportingInterval > 0``: a reporter setting, so it is not part of ``HealthConfig``."""
    field = _key_path(path, "statusReportingInterval")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return [ValidationError(field, f"must be a finite number of seconds, got {_describe(value)}", value)]
    if value <= 0:
        return [ValidationError(field, f"must be > 0, got {float(value)}s", value)]
    return []


@attrs.frozen
class FailureHandling:
    """toolhive's ``failureHandling`` block; durations are seconds.

    Construction checks only the enum; the rest is checked by :meth:`problems`, like
    ``BackendSpec``, so a config can report all its problems at once.  The circuit
    breaker is health's own ``CircuitBreakerConfig``, which validates itself.
    """

    health_check_interval: float = DEFAULT_CHECK_INTERVAL
    health_check_timeout: float = DEFAULT_TIMEOUT
    unhealthy_threshold: int = DEFAULT_UNHEALTHY_THRESHOLD
    status_reporting_interval: float = DEFAULT_STATUS_REPORTING_INTERVAL
    circuit_breaker: CircuitBreakerConfig = attrs.field(factory=CircuitBreakerConfig)
    partial_failure_mode: PartialFailureMode = attrs.field(
        default=PartialFailureMode.FAIL, converter=_partial_failure_mode
    )

    def problems(self, path: str = "failureHandling") -> list[ValidationError]:
        """Every rule violation, each field named ``path.<toolhive key>``."""
        return self._problems(path, frozenset())

    def _problems(self, path: str, skip: frozenset[str]) -> list[ValidationError]:
        def value(key: str, current: object) -> object:
            return _SKIP if key in skip else current

        found = _health_rule_problems(
            path,
            value("healthCheckInterval", self.health_check_interval),
            value("healthCheckTimeout", self.health_check_timeout),
            value("unhealthyThreshold", self.unhealthy_threshold),
        )
        if "statusReportingInterval" not in skip:
            found.extend(_reporting_interval_problems(path, self.status_reporting_interval))
        if not isinstance(self.circuit_breaker, CircuitBreakerConfig):
            found.append(ValidationError(_key_path(path, "circuitBreaker"), "must be a CircuitBreakerConfig", None))
        return found

    def health_config(self) -> HealthConfig:
        """The health monitor's config; the degraded threshold is fixed at 5s as in toolhive."""
        try:
            return HealthConfig(
                check_interval=self.health_check_interval,
                timeout=self.health_check_timeout,
                unhealthy_threshold=self.unhealthy_threshold,
                degraded_threshold=DEFAULT_DEGRADED_THRESHOLD,
                circuit_breaker=self.circuit_breaker,
            )
        except ValidationError as exc:
            raise _repath(exc, "failureHandling") from None

    @classmethod
    def from_dict(cls, data: object, path: str = "failureHandling") -> FailureHandling:
        """Parse and validate a ``failureHandling`` mapping; ``ConfigError`` lists every problem."""
        found: list[ValidationError] = []
        handling, skip = _parse_failure_handling(data, path, found)
        found.extend(handling._problems(path, skip))
        if found:
            raise ConfigError(found)
        return handling

    def dump(self) -> dict[str, Any]:
        """The block as a user would write it, durations in Go notation."""
        breaker = self.circuit_breaker
        return {
            "healthCheckInterval": _dump_duration(self.health_check_interval),
            "healthCheckTimeout": _dump_duration(self.health_check_timeout),
            "unhealthyThreshold": self.unhealthy_threshold,
            "statusReportingInterval": _dump_duration(self.status_reporting_interval),
            "partialFailureMode": str(self.partial_failure_mode),
            "circuitBreaker": {
                "enabled": breaker.enabled,
                "failureThreshold": breaker.failure_threshold,
                "timeout": _dump_duration(breaker.open_timeout),
            },
        }


def _dump_duration(value: object) -> object:
    """Go notation for a valid duration; anything else as it is (dumps must never raise)."""
    try:
        return format_duration(value)  # type: ignore[arg-type]
    except ValueError:
        return value


_FAILURE_KEYS: Final = (
    "healthCheckInterval",
    "healthCheckTimeout",
    "unhealthyThreshold",
    "statusReportingInterval",
    "partialFailureMode",
    "circuitBreaker",
)
_BREAKER_KEYS: Final = ("enabled", "failureThreshold", "timeout")


def _parse_breaker(data: object, handling_path: str, found: list[ValidationError]) -> CircuitBreakerConfig:
    """The ``circuitBreaker`` block, checked here because ``CircuitBreakerConfig`` validates itself.

    Like ``HealthConfig``, each value is checked in an otherwise valid config so that
    every problem is reported; the timeout's rule depends on ``enabled`` only.
    """
    path = _key_path(handling_path, "circuitBreaker")
    if data is None:
        return CircuitBreakerConfig()
    if not isinstance(data, Mapping):
        found.append(ValidationError(path, f"must be a mapping, got {type(data).__name__}", None))
        return CircuitBreakerConfig()
    found.extend(_unknown_keys(data, _BREAKER_KEYS, path))
    reader = _Reader(data, path, found)
    enabled: Any = data.get("enabled")
    enabled = False if enabled is None else enabled
    threshold: Any = data.get("failureThreshold")
    threshold = CircuitBreakerConfig().failure_threshold if threshold is None else threshold
    timeout = reader.duration("timeout", CircuitBreakerConfig().open_timeout)
    before = len(found)
    enabled_ok = _attempt(found, handling_path, lambda: CircuitBreakerConfig(enabled=enabled)) is not None
    _attempt(found, handling_path, lambda: CircuitBreakerConfig(failure_threshold=threshold))
    if "timeout" not in reader.bad:
        known_enabled = enabled if enabled_ok else False
        _attempt(found, handling_path, lambda: CircuitBreakerConfig(enabled=known_enabled, open_timeout=timeout))
    if reader.bad or len(found) > before:
        return CircuitBreakerConfig()
    breaker = _attempt(
        found,
        handling_path,
        lambda: CircuitBreakerConfig(enabled=enabled, failure_threshold=threshold, open_timeout=timeout),
    )
    return CircuitBreakerConfig() if breaker is None else breaker


def _parse_failure_handling(
    data: object, path: str, found: list[ValidationError]
) -> tuple[FailureHandling, frozenset[str]]:
    """The block with fallbacks for bad values, and the keys whose rules must be skipped.

    ``unhealthyThreshold`` is passed through unchecked: its type and range are rules of
    ``HealthConfig``, reported by ``FailureHandling.problems``.
    """
    if data is None:
        return FailureHandling(), frozenset()
    if not isinstance(data, Mapping):
        found.append(ValidationError(path or ROOT_FIELD, f"must be a mapping, got {type(data).__name__}", None))
        return FailureHandling(), frozenset(_FAILURE_KEYS)
    found.extend(_unknown_keys(data, _FAILURE_KEYS, path))
    reader = _Reader(data, path, found)
    threshold: Any = data.get("unhealthyThreshold")
    handling = FailureHandling(
        health_check_interval=reader.duration("healthCheckInterval", DEFAULT_CHECK_INTERVAL),
        health_check_timeout=reader.duration("healthCheckTimeout", DEFAULT_TIMEOUT),
        unhealthy_threshold=DEFAULT_UNHEALTHY_THRESHOLD if threshold is None else threshold,
        status_reporting_interval=reader.duration("statusReportingInterval", DEFAULT_STATUS_REPORTING_INTERVAL),
        circuit_breaker=_parse_breaker(data.get("circuitBreaker"), path, found),
        partial_failure_mode=reader.convert(
            "partialFailureMode", _partial_failure_mode, PartialFailureMode.FAIL, prefix=path
        ),
    )
    return handling, frozenset(reader.bad)


# --------------------------------------------------------------------------- the whole file

_TOP_KEYS: Final = ("name", "backends", "failureHandling", "aggregation")
_BACKEND_INDEX: Final = re.compile(r"backends\[(\d+)\]")


def _backend_tuple(value: Iterable[BackendSpec]) -> tuple[BackendSpec, ...]:
    backends = tuple(value)
    for index, spec in enumerate(backends):
        if not isinstance(spec, BackendSpec):
            raise ValidationError(f"backends[{index}]", f"must be a BackendSpec, got {type(spec).__name__}", None)
    return backends


def _section(problem: ValidationError) -> tuple[int, int]:
    """Sort key putting problems in file order: top level, each backend in turn, failureHandling."""
    match = _BACKEND_INDEX.match(problem.field)
    if match:
        return 2, int(match.group(1))
    if problem.field.startswith("backends"):
        return 1, 0
    if problem.field.startswith("failureHandling."):
        key = problem.field.removeprefix("failureHandling.").split(".", 1)[0]
        return 3, _FAILURE_KEYS.index(key) if key in _FAILURE_KEYS else len(_FAILURE_KEYS)
    if problem.field.startswith("failureHandling"):
        return 3, -1
    if problem.field.startswith("aggregation"):
        return 4, 0
    return 0, 0


def _rule_problems(
    name: str | None,
    backends: Iterable[tuple[int, BackendSpec, frozenset[str]]],
    handling: FailureHandling,
    handling_skip: frozenset[str],
) -> list[ValidationError]:
    """The rules of a parsed config, skipping fields whose values failed to parse."""
    found: list[ValidationError] = []
    if name is not None and not _NAME_PATTERN.match(name):
        found.append(
            ValidationError(
                "name",
                "must be 1-253 letters, digits, '.', '_' or '-', starting and ending with a letter or digit, "
                f"got {_show(name)}",
                name,
            )
        )
    first_use: dict[str, int] = {}
    for index, spec, skip in backends:
        path = f"backends[{index}]"
        found.extend(_backend_rule_problems(spec, path, skip))
        if not spec.name or f"{path}.name" in skip:
            continue
        if spec.name in first_use:
            found.append(
                ValidationError(
                    f"{path}.name",
                    f"duplicate backend name {spec.name!r} (first used by backends[{first_use[spec.name]}])",
                    spec.name,
                )
            )
        else:
            first_use[spec.name] = index
    found.extend(handling._problems("failureHandling", handling_skip))
    return found


@attrs.frozen
class RuntimeConfig:
    """Everything the runtime reads from its config file: the backends and how failures are handled.

    Build one with :meth:`load` or :meth:`from_dict`, which return only valid configs
    and otherwise raise ``ConfigError`` listing every problem.  Direct construction does
    not validate (like ``BackendSpec``); call :meth:`problems` or :meth:`validate`.
    A config with no backends is valid: the vMCP is Ready with nothing to serve.
    """

    backends: tuple[BackendSpec, ...] = attrs.field(default=(), converter=_backend_tuple)
    failure_handling: FailureHandling = attrs.field(factory=FailureHandling)
    name: str | None = None
    aggregation: AggregationConfig = attrs.field(factory=AggregationConfig)

    def problems(self) -> list[ValidationError]:
        """Every problem: each backend's own, duplicate names, failure handling, the vMCP name, aggregation."""
        return _rule_problems(
            self.name,
            ((index, spec, frozenset()) for index, spec in enumerate(self.backends)),
            self.failure_handling,
            frozenset(),
        ) + self.aggregation.problems("aggregation", {spec.name for spec in self.backends})

    def validate(self, source: str | None = None) -> RuntimeConfig:
        """Raise ``ConfigError`` with every problem; return self so calls chain."""
        found = self.problems()
        if found:
            raise ConfigError(found, source)
        return self

    @classmethod
    def from_dict(cls, data: object, source: str = "<config>") -> RuntimeConfig:
        """Parse and validate a decoded config document; ``source`` names it in the error.

        Never raises anything but ``ConfigError``, whatever ``data`` is: every problem
        carries a non-empty field path (``(root)`` when the document is not a mapping).
        """
        if not isinstance(data, Mapping):
            described = "nothing (the document is empty)" if data is None else type(data).__name__
            raise ConfigError(
                [
                    ValidationError(
                        ROOT_FIELD, f"must be a mapping with the keys {', '.join(_TOP_KEYS)}, got {described}"
                    )
                ],
                source,
            )
        found = _unknown_keys(data, _TOP_KEYS, "")
        top = _Reader(data, "", found)
        name = top.string("name")
        entries: list[tuple[int, BackendSpec, frozenset[str]]] = []
        raw_backends = data.get("backends")
        if raw_backends is not None and not _is_list(raw_backends):
            top.fail("backends", f"must be a list of backends, got {type(raw_backends).__name__}")
        elif raw_backends is not None:
            for index, item in enumerate(raw_backends):
                parsed = _parse_backend(item, f"backends[{index}]", found)
                if parsed is not None:
                    entries.append((index, *parsed))
        handling, handling_skip = _parse_failure_handling(data.get("failureHandling"), "failureHandling", found)
        found.extend(_rule_problems(None if "name" in top.bad else name, entries, handling, handling_skip))
        names = {spec.name for _, spec, _ in entries}
        aggregation = parse_aggregation(data.get("aggregation"), found, "aggregation", names)
        if found:
            raise ConfigError(sorted(found, key=_section), source)
        backends = tuple(spec for _, spec, _ in entries)
        return cls(backends=backends, failure_handling=handling, name=name, aggregation=aggregation)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> RuntimeConfig:
        """Read, parse and validate a YAML (``.yaml``/``.yml``) or JSON (``.json``) file.

        Other names are sniffed: a document starting with ``{`` or ``[`` is read as
        JSON, anything else as YAML.  Every failure -- missing file, bad encoding,
        syntax error (with line and column), wrong shape -- is a ``ConfigError``.
        """
        source = os.fspath(path)
        return cls.from_dict(_read_document(Path(source), source), source)

    def dump(self) -> dict[str, Any]:
        """The config as a user would write it, with env and header values redacted (``--debug``)."""
        data: dict[str, Any] = {}
        if self.name is not None:
            data["name"] = self.name
        backends: list[dict[str, Any]] = []
        for spec in self.backends:
            entry = spec.redacted()
            if spec.cwd:
                entry["cwd"] = spec.cwd
            backends.append(entry)
        data["backends"] = backends
        data["failureHandling"] = self.failure_handling.dump()
        if self.aggregation != AggregationConfig():
            data["aggregation"] = self.aggregation.dump()
        return data


# --------------------------------------------------------------------------- reading files


class _StrictLoader(yaml.SafeLoader):
    """``SafeLoader`` that rejects duplicate keys, which PyYAML silently resolves to the last.

    A duplicated ``url:`` would otherwise override the first without a word.  Merge
    keys (``<<``) are left alone: overriding merged values is what they are for.
    """

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge" or not isinstance(key_node, yaml.ScalarNode):
                continue
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"found duplicate key {_show(key)}", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


class _DuplicateJsonKey(ValueError):
    """A JSON object repeats a key (json.loads would silently keep the last)."""


def _json_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _DuplicateJsonKey(key)
        result[key] = value
    return result


def _file_error(source: str, message: str) -> ConfigError:
    return ConfigError([ValidationError(FILE_FIELD, message, None)], source)


def _load_yaml(text: str, source: str) -> object:
    try:
        return yaml.load(text, Loader=_StrictLoader)  # a SafeLoader: plain data only
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        # Only the problem text: str(exc) quotes the offending line, which may hold a secret.
        what = "; ".join(part for part in (exc.context, exc.problem) if part) or "invalid YAML"
        raise _file_error(source, f"YAML syntax error{where}: {what}") from None
    except yaml.YAMLError as exc:
        raise _file_error(source, f"YAML error: {exc}") from None
    except RecursionError:
        raise _file_error(source, "YAML is nested too deeply") from None
    except ValueError as exc:
        # e.g. an integer literal longer than Python's int-conversion limit.
        raise _file_error(source, f"YAML value cannot be read: {exc}") from None


def _load_json(text: str, source: str) -> object:
    try:
        return json.loads(text, object_pairs_hook=_json_object)
    except json.JSONDecodeError as exc:
        raise _file_error(source, f"JSON syntax error at line {exc.lineno}, column {exc.colno}: {exc.msg}") from None
    except _DuplicateJsonKey as exc:
        raise _file_error(source, f"JSON object has a duplicate key {_show(exc.args[0])}") from None
    except RecursionError:
        raise _file_error(source, "JSON is nested too deeply") from None
    except ValueError as exc:
        raise _file_error(source, f"JSON value cannot be read: {exc}") from None


def _read_document(path: Path, source: str) -> object:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise _file_error(source, f"cannot read the file: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise _file_error(source, f"is not UTF-8 text (invalid byte at offset {exc.start})") from None
    suffix = path.suffix.lower()
    if suffix == ".json":
        return _load_json(text, source)
    if suffix in (".yaml", ".yml") or not text.lstrip().startswith(("{", "[")):
        return _load_yaml(text, source)
    try:
        return _load_json(text, source)
    except ConfigError as json_error:
        # A YAML flow mapping also starts with "{"; report the JSON error only if YAML fails too.
        try:
            return _load_yaml(text, source)
        except ConfigError:
            raise json_error from None
