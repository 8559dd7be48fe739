"""Requests to the API server below the typed client, for any kind given as a plain dict.

Why: the typed ``kubernetes`` API classes cover built-in kinds only and hide the response
headers and content negotiation some tests check (``Warning`` headers, ``Accept: ...as=Table``);
this sends one request with a client's own TLS and authentication and returns it whole, raising
the same :class:`kubernetes.client.ApiException` subclasses for non-2xx statuses as the typed API.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kubernetes import client

from testkit.plane_process import ControlPlaneError


@dataclass(frozen=True)
class RawResponse:
    """An HTTP response read in full: status, body bytes and headers (names lower-cased)."""

    status: int
    data: bytes
    headers: Mapping[str, str]

    def json(self) -> Any:
        """Decode the body as JSON."""
        return json.loads(self.data or b"null")


def request_json(
    api: client.ApiClient,
    method: str,
    path: str,
    body: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Send one JSON request through ``api`` and return the decoded JSON object."""
    decoded = raw_request(api, method, path, body).json()
    if not isinstance(decoded, dict):
        raise ControlPlaneError(f"{method} {path} returned non-object JSON")
    return decoded


def raw_request(
    api: client.ApiClient,
    method: str,
    path: str,
    body: Mapping[str, Any] | None = None,
    *,
    headers: Mapping[str, str] | None = None,
) -> RawResponse:
    """Send one request through ``api`` (with its TLS and auth settings) and return the response.

    Below the typed API classes: it works for any kind given as a plain dict and lets a test set
    ``Accept`` (Table output) or read response headers (``Warning``). Non-2xx statuses raise the
    same :class:`kubernetes.client.ApiException` subclasses as the typed methods.
    """
    header_params: dict[str, str] = {"Accept": "application/json"}
    if body is not None:
        header_params["Content-Type"] = "application/json"
    header_params.update(headers or {})
    method_, url, header_params_, body_, post_params = api.param_serialize(
        method=method,
        resource_path=path,
        header_params=header_params,
        body=dict(body) if body is not None else None,
        auth_settings=["BearerToken"],
    )
    # RESTResponse is untyped in kubernetes 37.x; read() fills .data, which from_response needs.
    response: Any = api.call_api(method_, url, header_params_, body_, post_params)
    data: bytes = response.read()
    if not 200 <= response.status <= 299:
        raise client.ApiException.from_response(http_resp=response, body=data.decode("utf-8", "replace"), data=None)
    return RawResponse(
        status=response.status, data=data, headers={str(k).lower(): str(v) for k, v in response.headers.items()}
    )
