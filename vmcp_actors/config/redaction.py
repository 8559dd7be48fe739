"""Redaction, the one place: URLs without their credentials, and text without known secret values.

Everything that leaves the config -- a status's ``url``, a snapshot, a ``repr``, a
config dump, a log line, a failure message -- passes through here, so there is one
definition of what a secret looks like:

* a URL's user-info and query values (``http://svc:KEY@host/mcp?api_key=KEY``) are
  credentials as often as not, so :func:`redact_url` masks them structurally, whatever
  their length, and :func:`redact_urls_in` does the same to URLs inside free text;
* header values, env values and bearer tokens are known by value, so a
  :class:`Scrubber` replaces every occurrence of them (and of their quoted, escaped and
  percent-encoded forms, which is how loggers and servers echo them) in any text;
* an HTTP credential after ``Bearer``/``Basic`` is masked even when its value is not
  known (a token rotated by someone else).

Values shorter than :data:`MIN_SECRET_LENGTH` are not scrubbed from free text: ``1``
or ``true`` cannot be told apart from the words around them, and replacing them would
make every log line unreadable.  URLs are still redacted structurally.

The module is pure: strings in, strings out.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import re
from collections.abc import Iterable
from typing import Final
from urllib.parse import parse_qsl, quote, quote_plus, unquote, urlsplit, urlunsplit

__all__ = [
    "MIN_SECRET_LENGTH",
    "REDACTED",
    "Scrubber",
    "header_secrets",
    "redact_url",
    "redact_urls_in",
    "secret_variants",
    "url_secrets",
]

#: What a hidden value is replaced with, everywhere.
REDACTED: Final = "<redacted>"
#: Shorter values are not scrubbed from free text (see the module docstring).
MIN_SECRET_LENGTH: Final = 6
#: What :func:`redact_url` answers for text ``urlsplit`` cannot parse.
UNPARSEABLE_URL: Final = "<unparseable url>"
#: Scrubbing repeats while a replacement joins with its neighbours into a secret again.
_MAX_SCRUB_PASSES: Final = 4
#: The marks a truncated text ends with (``_truncate`` in failures, ``show`` in fields).
_ELLIPSES: Final = ("...", "…")
#: Said instead of a text that still held a secret after every pass.
WITHHELD: Final = "<text withheld: it kept containing a secret>"

# A URL in free text: a scheme, "://", then anything but whitespace and quotes.
_URL_IN_TEXT: Final = re.compile(r"\b[A-Za-z][A-Za-z0-9+.\-]*://[^\s\"'`]+")
# An HTTP credential: the scheme, then a token68 that is not the first auth-param
# (``Bearer realm="x"`` is a challenge, not a credential).
_CREDENTIAL: Final = re.compile(
    rf"\b(Bearer|Basic)(\s+)(?![A-Za-z0-9\-._~+/]+\s*=\s*[^=\s,])([A-Za-z0-9\-._~+/]{{{MIN_SECRET_LENGTH},}}=*)",
    re.IGNORECASE,
)


def redact_url(url: str) -> str:
    """``url`` with its user-info and query values masked and its fragment dropped.

    Scheme, host, port, path and query *names* stay, so an operator can still tell
    which endpoint (and which parameters) a backend uses:
    ``http://svc:KEY@h:8080/mcp?api_key=KEY`` becomes
    ``http://<redacted>@h:8080/mcp?api_key=<redacted>``.
    """
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return UNPARSEABLE_URL
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{port}" if port is not None else host
    if "@" in parts.netloc:
        netloc = f"{REDACTED}@{netloc}"
    return urlunsplit((parts.scheme, netloc, parts.path, _redact_query(parts.query), ""))


def _redact_query(query: str) -> str:
    """Each ``name=value`` as ``name=<redacted>``; a bare item (which may be a key) as ``<redacted>``."""
    items: list[str] = []
    for item in re.split(r"[&;]", query):
        if not item:
            continue
        name, has_value, _ = item.partition("=")
        items.append(f"{name}={REDACTED}" if has_value else REDACTED)
    return "&".join(items)


def redact_urls_in(text: str) -> str:
    """``text`` with every URL that carries user-info or a query passed through :func:`redact_url`."""

    def one(match: re.Match[str]) -> str:
        found = match.group(0)
        authority_and_rest = found.split("://", 1)[1]
        authority = re.split(r"[/?#]", authority_and_rest, maxsplit=1)[0]
        if "@" not in authority and "?" not in authority_and_rest:
            return found
        return redact_url(found)

    return _URL_IN_TEXT.sub(one, text)


def url_secrets(url: str | None) -> frozenset[str]:
    """The credential values a URL carries: user name, password and query values (raw and decoded)."""
    if not url:
        return frozenset()
    try:
        parts = urlsplit(url)
        found = {parts.username or "", parts.password or ""}
        found.update(value for _, value in parse_qsl(parts.query, keep_blank_values=True))
        found.update(item.partition("=")[2] for item in re.split(r"[&;]", parts.query))
        found.update(item for item in re.split(r"[&;]", parts.query) if "=" not in item)
    except ValueError:
        return frozenset()
    found |= {unquote(value) for value in found}
    return frozenset(value for value in found if value)


def header_secrets(value: str) -> frozenset[str]:
    """A header value and, for ``Scheme credentials`` values, the credentials alone.

    A server that rejects a token usually echoes the token, not the whole header; a
    ``Basic`` credential is also decoded, so ``user:password`` and the password count.
    """
    found = {value.strip()}
    scheme, _, credentials = value.strip().partition(" ")
    credentials = credentials.strip()
    if credentials:
        found.add(credentials)
        if scheme.lower() == "basic":
            try:
                decoded = base64.b64decode(credentials, validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                decoded = ""
            if decoded:
                found.add(decoded)
                found.add(decoded.partition(":")[2])
    return frozenset(item for item in found if item)


def secret_variants(value: str) -> frozenset[str]:
    """``value`` and the forms it takes when echoed: repr/bytes-repr/JSON escaped, percent-encoded.

    Loggers print headers as ``bytes`` reprs and servers echo values inside JSON, so the
    raw value alone would miss a secret with a quote, a backslash or a non-ASCII letter.
    """
    forms = {
        value,
        repr(value)[1:-1],
        json.dumps(value)[1:-1],
        json.dumps(value, ensure_ascii=False)[1:-1],
        quote(value, safe=""),
        quote_plus(value, safe=""),
    }
    # A lone surrogate cannot be sent anywhere as bytes, so it has no bytes form.
    with contextlib.suppress(UnicodeEncodeError):
        forms.add(repr(value.encode("utf-8"))[2:-1])
    return frozenset(form for form in forms if len(form) >= MIN_SECRET_LENGTH)


class Scrubber:
    """Replaces a fixed set of secret values, and HTTP credentials and URL credentials, in text.

    Immutable once built: a new set of secrets is a new ``Scrubber``.
    """

    __slots__ = ("_ordered", "_pattern", "secrets")

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        values: set[str] = set()
        for secret in secrets:
            if len(secret) >= MIN_SECRET_LENGTH:
                values |= secret_variants(secret)
        self.secrets: frozenset[str] = frozenset(values)
        # Longest first, so a secret that contains another is replaced whole.
        ordered = sorted(self.secrets, key=lambda item: (-len(item), item))
        self._ordered = tuple(ordered)
        self._pattern = re.compile("|".join(map(re.escape, ordered))) if ordered else None

    def scrub(self, text: str) -> str:
        """``text`` with every known secret, URL credential and HTTP credential replaced by ``<redacted>``."""
        for _ in range(_MAX_SCRUB_PASSES):
            scrubbed = self._scrub_once(text)
            if scrubbed == text:
                return scrubbed
            text = scrubbed
        return text if self._pattern is None or not self._pattern.search(text) else WITHHELD

    def scrub_values(self, text: str) -> str:
        """``text`` with every known secret value replaced, and nothing else touched.

        For what a backend returns to a client (tool results, log messages): a URL with
        credentials or an ``Authorization`` example there is content, not our secret.
        """
        if self._pattern is None:
            return text
        for _ in range(_MAX_SCRUB_PASSES):
            scrubbed = self._pattern.sub(REDACTED, text)
            if scrubbed == text:
                return scrubbed
            text = scrubbed
        return text if not self._pattern.search(text) else WITHHELD

    def _scrub_once(self, text: str) -> str:
        if self._pattern is not None:
            text = self._cut_secret_at_the_end(self._pattern.sub(REDACTED, text))
        text = redact_urls_in(text)
        return _CREDENTIAL.sub(lambda match: f"{match.group(1)}{match.group(2)}{REDACTED}", text)

    def _cut_secret_at_the_end(self, text: str) -> str:
        """Hide the start of a secret that a truncation (``...``/``…``) cut off at the end of ``text``.

        Messages quoting a server are cut to a few hundred characters, and the cut can
        fall inside an echoed token, leaving a prefix no whole-value match can find.
        """
        tail = next((mark for mark in _ELLIPSES if text.endswith(mark)), None)
        if tail is None:
            return text
        body = text[: -len(tail)]
        for secret in self._ordered:
            for length in range(len(secret) - 1, MIN_SECRET_LENGTH - 1, -1):
                if body.endswith(secret[:length]):
                    return body[:-length] + REDACTED + tail
        return text
