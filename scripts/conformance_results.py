"""What one run of the conformance suite found, read from the ``checks.json`` files it writes.

Why apart: the suite's console summary calls a scenario passed when no check failed, even if it
only warned or checked nothing; deciding "passed" from the checks themselves (:class:`Outcome`) and
turning the output directory into one result per scenario are pure rules over files, kept apart
from installing and running the suite so they can be read and changed on their own.

Only the standard library is used so the script runs before any virtualenv exists.
"""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from conformance_install import CONFORMANCE_VERSION, NODE_VERSION, tail

_RESULT_DIR = re.compile(r"^server-(?P<name>.+)-\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}-\d{3}Z$")


class Outcome(enum.StrEnum):
    """How one scenario ended, from the statuses of its checks.

    The suite's own summary marks a scenario ``✓`` when no check failed, even when it warned or
    checked nothing; its ``--expected-failures`` baseline, though, counts warnings as failures.
    Here only ``PASS`` passes: no check failed or warned, and at least one succeeded.
    """

    PASS = "pass"
    FAIL = "fail"
    WARN = "warn"
    NO_CHECKS = "no-checks"
    ERROR = "error"


@dataclass(frozen=True)
class Check:
    """One check of a scenario, as the suite wrote it to ``checks.json``."""

    id: str
    name: str
    status: str
    description: str
    error_message: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Check:
        """Build a check from one entry of ``checks.json``."""
        details = data.get("details")
        message = data.get("errorMessage")
        return cls(
            id=str(data.get("id", "")),
            name=str(data.get("name", "")),
            status=str(data.get("status", "")),
            description=str(data.get("description", "")),
            error_message=str(message) if message is not None else None,
            details=details if isinstance(details, dict) else {},
        )


@dataclass(frozen=True)
class ScenarioResult:
    """The checks one scenario produced, or the error that kept it from producing any."""

    scenario: str
    checks: tuple[Check, ...] = ()
    error: str | None = None

    def count(self, status: str) -> int:
        """How many checks ended with ``status`` (``SUCCESS``, ``FAILURE``, ``WARNING``, ``INFO``)."""
        return sum(1 for check in self.checks if check.status == status)

    @property
    def outcome(self) -> Outcome:
        """The scenario's :class:`Outcome`."""
        if self.error is not None:
            return Outcome.ERROR
        if self.count("FAILURE"):
            return Outcome.FAIL
        if self.count("WARNING"):
            return Outcome.WARN
        if not self.count("SUCCESS"):
            return Outcome.NO_CHECKS
        return Outcome.PASS

    @property
    def passed(self) -> bool:
        """Whether the scenario passed (see :class:`Outcome`)."""
        return self.outcome is Outcome.PASS

    @property
    def reason(self) -> str:
        """Why the scenario did not pass: the failing and warning checks' messages ('' if it passed)."""
        if self.error is not None:
            return self.error
        messages = [
            f"{check.name}: {check.error_message or check.description}"
            for check in self.checks
            if check.status in ("FAILURE", "WARNING")
        ]
        if not messages and not self.passed:
            return "the scenario reported no successful check"
        return "; ".join(messages)


@dataclass(frozen=True)
class SuiteRun:
    """One run of ``conformance server``: what ran, how long it took, and each scenario's result."""

    url: str
    command: tuple[str, ...]
    returncode: int
    duration_s: float
    results: Mapping[str, ScenarioResult]
    stdout: str
    stderr: str

    @property
    def passed(self) -> list[str]:
        """The scenarios that passed, in the order they ran."""
        return [name for name, result in self.results.items() if result.passed]

    @property
    def not_passed(self) -> list[str]:
        """The scenarios that did not pass, in the order they ran."""
        return [name for name, result in self.results.items() if not result.passed]

    def table(self) -> str:
        """A plain-text table: scenario, outcome, check counts and the reason for a non-pass."""
        width = max(len("scenario"), *(len(name) for name in self.results))
        lines = [f"{'scenario':<{width}}  outcome    ok fail warn  reason"]
        for name, result in self.results.items():
            lines.append(
                f"{name:<{width}}  {result.outcome.value:<9} {result.count('SUCCESS'):>3} "
                f"{result.count('FAILURE'):>4} {result.count('WARNING'):>4}  {result.reason}"
            )
        lines.append(f"{len(self.passed)}/{len(self.results)} scenarios passed in {self.duration_s:.1f}s")
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        """A JSON-serialisable summary (per-scenario outcome, counts, reason and checks)."""
        return {
            "url": self.url,
            "command": list(self.command),
            "returncode": self.returncode,
            "duration_s": round(self.duration_s, 3),
            "node": NODE_VERSION,
            "conformance": CONFORMANCE_VERSION,
            "scenarios": {
                name: {
                    "outcome": result.outcome.value,
                    "success": result.count("SUCCESS"),
                    "failure": result.count("FAILURE"),
                    "warning": result.count("WARNING"),
                    "reason": result.reason,
                    "checks": [
                        {"id": check.id, "status": check.status, "message": check.error_message}
                        for check in result.checks
                    ],
                }
                for name, result in self.results.items()
            },
        }


def _read_checks(path: Path) -> tuple[Check, ...]:
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, list):
        raise ValueError(f"{path} holds {type(data).__name__}, not a list of checks")
    return tuple(Check.from_json(entry) for entry in data if isinstance(entry, dict))


def parse_results(output_dir: Path, ran: Sequence[str], stderr: str) -> dict[str, ScenarioResult]:
    """Turn the suite's ``--output-dir`` into one result per scenario, in the order they ran.

    The suite writes ``server-<scenario>-<timestamp>/checks.json`` for each scenario it could run;
    one it could not run (the runner itself threw) has no directory, and its error is on stderr.
    """
    found: dict[str, ScenarioResult] = {}
    for entry in sorted(output_dir.iterdir()) if output_dir.is_dir() else []:
        match = _RESULT_DIR.match(entry.name)
        if match is None or not (entry / "checks.json").is_file():
            continue
        name = match.group("name")
        try:
            found[name] = ScenarioResult(name, _read_checks(entry / "checks.json"))
        except (OSError, ValueError) as error:
            found[name] = ScenarioResult(name, error=f"unreadable {entry / 'checks.json'}: {error}")
    results: dict[str, ScenarioResult] = {}
    for name in ran:
        if name in found:
            results[name] = found.pop(name)
            continue
        mentions = [line for line in stderr.splitlines() if name in line]
        detail = tail("\n".join(mentions) or stderr, 10) or "no output"
        results[name] = ScenarioResult(name, error=f"the suite wrote no checks for {name}: {detail}")
    results.update(found)
    return results
