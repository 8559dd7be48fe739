"""The secret values a config holds, as a redactor: headers, env values, URL credentials, bearer tokens.

Redacting a config object's own ``repr`` is not enough: the MCP SDK and its HTTP client
log raw URLs and headers at DEBUG, and a backend may echo a token back in a 401
challenge or a JSON-RPC error.  Those texts are not ours to format, so they are
scrubbed by value: :class:`SecretRedactor` knows every secret the config configures and
replaces it wherever it appears.

Bearer tokens are not in the config, only where to read them, and they rotate.  The
redactor re-reads a token when its source changes -- the environment variable's value,
or the token file's identity and modification time (a mounted Secret is swapped by
replacing a symlink) -- so a rotated token is known before the next connect uses it.
Secrets are only ever added, never forgotten: a message about an old connection may
still carry the old value.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from vmcp_actors.config.auth import AuthSpec
from vmcp_actors.config.backend_spec import BackendSpec
from vmcp_actors.config.redaction import Scrubber, header_secrets, url_secrets
from vmcp_actors.errors import ValidationError

if TYPE_CHECKING:
    from vmcp_actors.config.runtime_config import RuntimeConfig

__all__ = ["SecretRedactor", "spec_secrets"]


def spec_secrets(spec: BackendSpec) -> frozenset[str]:
    """The secret values written in one spec: header and env values, the URL's credentials."""
    found: set[str] = set()
    for _, value in spec.headers:
        found |= header_secrets(value)
    found.update(value for _, value in spec.env)
    found |= url_secrets(spec.url)
    return frozenset(found)


class _TokenSource:
    """One bearer-token source, re-read only when it may have changed."""

    __slots__ = ("_auth", "_cached", "_environ")

    def __init__(self, auth: AuthSpec, environ: Mapping[str, str] | None) -> None:
        self._auth = auth
        self._environ = environ
        # One attribute, replaced whole, so a reader on another thread never pairs a
        # new key with an old value.
        self._cached: tuple[object, frozenset[str]] = (None, frozenset())

    def current(self) -> frozenset[str]:
        """Every value the token has had, read again if its source changed; cheap when nothing did."""
        key = self._change_key()
        cached_key, cached_value = self._cached
        if key is not None and key == cached_key:
            return cached_value
        try:
            token = self._auth.resolve_token(self._environ)
        except ValidationError:
            token = None
        # Both the token and the header built from it, whose value a server may echo; the
        # values seen before are kept, as a message about an old connection may quote them.
        value = cached_value | ({token, f"Bearer {token}"} if token else set())
        self._cached = (key, value)
        return value

    def _change_key(self) -> object:
        """What identifies the token's current value without reading it; ``None`` forces a read."""
        if self._auth.token_env:
            environ = os.environ if self._environ is None else self._environ
            return ("env", environ.get(self._auth.token_env))
        if self._auth.token_file:
            try:
                info = os.stat(self._auth.token_file)
            except OSError:
                return ("missing",)
            return ("file", info.st_dev, info.st_ino, info.st_mtime_ns, info.st_size)
        return None


class SecretRedactor:
    """Scrubs every secret a config holds from any text: log records, failure messages.

    Build one with :meth:`from_config` (or :meth:`from_specs`), :meth:`add` specs a
    runtime gains later, and call :meth:`scrub`.  Safe to use from any thread: the
    known values are kept in an immutable :class:`~vmcp_actors.config.redaction.Scrubber`
    that is replaced, never changed, when a token rotates or a spec is added.
    """

    def __init__(self, values: Iterable[str] = (), *, environ: Mapping[str, str] | None = None) -> None:
        self._environ = environ
        # Appended to only (list.append is atomic), so readers on other threads need no lock.
        self._static: list[str] = list(values)
        self._tokens: list[_TokenSource] = []
        initial = frozenset(self._static)
        self._state: tuple[frozenset[str], Scrubber] = (initial, Scrubber(initial))

    @classmethod
    def from_specs(cls, specs: Iterable[BackendSpec], *, environ: Mapping[str, str] | None = None) -> SecretRedactor:
        """A redactor for these backends; ``environ`` (default ``os.environ``) holds ``tokenEnv`` tokens."""
        redactor = cls(environ=environ)
        for spec in specs:
            redactor.add(spec)
        return redactor

    @classmethod
    def from_config(cls, config: RuntimeConfig, *, environ: Mapping[str, str] | None = None) -> SecretRedactor:
        """A redactor for every backend of ``config``."""
        return cls.from_specs(config.backends, environ=environ)

    def add(self, spec: BackendSpec) -> None:
        """Also scrub ``spec``'s secrets (a backend added or updated while running).

        Call it from one thread at a time (the owner of the runtime or of the backend).
        """
        self._static.extend(spec_secrets(spec))
        if spec.auth.configured:
            self._tokens.append(_TokenSource(spec.auth, self._environ))
        self._refresh()

    def secrets(self) -> frozenset[str]:
        """Every secret value known now, tokens re-read if their source changed."""
        return self._refresh().secrets

    def scrub(self, text: str) -> str:
        """``text`` without any known secret, URL credential or HTTP credential."""
        return self._refresh().scrub(text)

    def scrub_values(self, text: str) -> str:
        """``text`` without any known secret value; URLs and credential-shaped text left as they are."""
        return self._refresh().scrub_values(text)

    def has_secrets(self) -> bool:
        """Whether any secret is known now (most backends have none: then nothing needs scrubbing)."""
        return bool(self._refresh().secrets)

    def _refresh(self) -> Scrubber:
        """The scrubber for the secrets known now; rebuilt only when they changed."""
        values: set[str] = set(self._static)
        for source in tuple(self._tokens):
            values |= source.current()
        current = frozenset(values)
        state = self._state
        if state[0] != current:
            state = (current, Scrubber(current))
            self._state = state
        return state[1]
