"""Scraping and reading an exposition the way Prometheus would: parsed by prometheus_client.parser."""

from __future__ import annotations

import threading
import time
import urllib.request
from collections.abc import Callable

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from testkit.waits import bound

Key = tuple[str, frozenset[tuple[str, str]]]


class Samples:
    """Every sample of one scrape, by name and labels."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.families: dict[str, str] = {}
        self.values: dict[Key, float] = {}
        for family in text_string_to_metric_families(text):
            self.families[family.name] = family.type
            for sample in family.samples:
                self.values[(sample.name, frozenset(sample.labels.items()))] = sample.value

    def get(self, name: str, **labels: str) -> float | None:
        """The sample with exactly these labels, or ``None``."""
        return self.values.get((name, frozenset(labels.items())))

    def value(self, name: str, **labels: str) -> float:
        """The sample with exactly these labels, 0 when absent (a counter never incremented)."""
        return self.get(name, **labels) or 0.0

    def matching(self, name: str, **labels: str) -> dict[frozenset[tuple[str, str]], float]:
        """Every sample of ``name`` whose labels include ``labels``."""
        wanted = set(labels.items())
        return {key[1]: value for key, value in self.values.items() if key[0] == name and wanted <= key[1]}

    def total(self, name: str, **labels: str) -> float:
        return sum(self.matching(name, **labels).values())

    def label_values(self, name: str, label: str) -> set[str]:
        return {dict(labels)[label] for labels in self.matching(name) if label in dict(labels)}


def scrape_registry(registry: CollectorRegistry) -> Samples:
    return Samples(generate_latest(registry).decode())


def scrape_url(url: str, timeout: float = 10.0) -> Samples:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        return Samples(response.read().decode())


def eventually(
    scrape: Callable[[], Samples],
    predicate: Callable[[Samples], bool],
    what: str,
    timeout: float | None = None,
    settle: Callable[[], object] | None = None,
) -> Samples:
    """Scrape until ``predicate`` holds (``settle``, e.g. the observer's flush, runs first each time).

    Metrics are read the way Prometheus reads them, by scraping; there is no event to wait
    on for "the scrape says so", so this polls with a bound, like a scraper would.
    """
    deadline = time.monotonic() + (bound() if timeout is None else bound(timeout))
    while True:
        if settle is not None:
            settle()
        samples = scrape()
        if predicate(samples):
            return samples
        if time.monotonic() >= deadline:
            raise AssertionError(f"metrics never showed {what}; last scrape:\n{_vmcp_lines(samples.text)}")
        threading.Event().wait(0.05)


def _vmcp_lines(text: str) -> str:
    return "\n".join(line for line in text.splitlines() if line.startswith("vmcp_") and "_created" not in line)
