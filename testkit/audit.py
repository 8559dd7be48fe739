"""The API server's own record of who called it: an audit log, for counting requests per identity.

A client's counters say what it believes it sent; the audit log says what the API server
received and from whom.  Tests that must show that exactly one replica writes start a
control plane with :func:`audit_args` (each replica as its own ServiceAccount) and count
with :func:`requests_by_user`.

The policy records, at ``Metadata`` level (no bodies), only requests for
VirtualMCPServers and their ``/status``; Leases, Events and everything else are left
out, so the log stays small.  ``RequestReceived`` is omitted: one line per request, at
``ResponseComplete`` (or ``Panic``).  The log backend's default mode is ``blocking``:
the line is written before the response is sent, so a request the client saw answered
is already in the file.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Final

import yaml

__all__ = ["AUDIT_POLICY", "audit_args", "read_audit", "requests_by_user"]

#: VirtualMCPServers and their status, metadata only; nothing else.
AUDIT_POLICY: Final[dict[str, Any]] = {
    "apiVersion": "audit.k8s.io/v1",
    "kind": "Policy",
    "omitStages": ["RequestReceived"],
    "rules": [
        {
            "level": "Metadata",
            "resources": [
                {"group": "toolhive.stacklok.dev", "resources": ["virtualmcpservers", "virtualmcpservers/status"]}
            ],
        },
        {"level": "None"},
    ],
}


def audit_args(directory: Path) -> tuple[list[str], Path]:
    """``kube-apiserver`` flags writing the audit log into ``directory``, and the log's path."""
    directory.mkdir(parents=True, exist_ok=True)
    policy = directory / "audit-policy.yaml"
    policy.write_text(yaml.safe_dump(AUDIT_POLICY, sort_keys=False), encoding="utf-8")
    log = directory / "audit.log"
    return [f"--audit-policy-file={policy}", f"--audit-log-path={log}", "--audit-log-format=json"], log


def read_audit(log: Path) -> list[dict[str, Any]]:
    """Every complete audit event in ``log`` (a torn last line, still being written, is skipped)."""
    if not log.exists():
        return []
    events: list[dict[str, Any]] = []
    for line in log.read_text(encoding="utf-8").splitlines():
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(event, dict) and event.get("kind") == "Event":
            events.append(event)
    return events


def requests_by_user(
    events: Iterable[dict[str, Any]],
    *,
    namespace: str,
    name: str,
    subresource: str | None = None,
    verbs: Iterable[str] | None = None,
) -> Counter[str]:
    """How many requests each user made for object ``namespace/name`` (optionally one subresource, some verbs)."""
    wanted = None if verbs is None else frozenset(verbs)
    counts: Counter[str] = Counter()
    for event in events:
        ref = event.get("objectRef") or {}
        if ref.get("namespace") != namespace or ref.get("name") != name:
            continue
        if subresource is not None and ref.get("subresource") != subresource:
            continue
        if wanted is not None and event.get("verb") not in wanted:
            continue
        counts[str((event.get("user") or {}).get("username", "?"))] += 1
    return counts
