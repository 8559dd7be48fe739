"""Example MCP server: a small in-memory notebook.

Run it over stdio (the only transport it speaks)::

    python -m vmcp_actors.examples.notes_server

Tools: ``add_note``, ``list_notes`` and ``search_notes``.  Notes live in the process and
are gone when it exits: this is a demo backend for the bundled example, whose point is
to be a healthy, always-up server next to the flaky one.  Only MCP goes to stdout; the
SDK logs to stderr.
"""

from __future__ import annotations

import argparse
import itertools
from datetime import UTC, datetime

from mcp.server.mcpserver import MCPServer
from typing_extensions import TypedDict

from vmcp_actors.examples._common import bad_arguments_reported

__all__ = ["Note", "Notebook", "build_server", "main"]

MAX_RESULTS = 100
"""Upper bound on the notes one call returns, so a big notebook cannot flood a client."""


class Note(TypedDict):
    """One note, as the tools return it (a TypedDict so the tools get an output schema)."""

    id: int
    title: str
    text: str
    tags: list[str]
    created_at: str


class Notebook:
    """The notes of one server process, in insertion order."""

    def __init__(self) -> None:
        self._notes: list[Note] = []
        self._ids = itertools.count(1)

    def add(self, title: str, text: str, tags: list[str] | None = None) -> Note:
        """Store a note; titles must be non-blank, tags are trimmed, lowercased, deduplicated."""
        title = title.strip()
        if not title:
            raise ValueError("title must not be blank")
        clean_tags = sorted({tag.strip().lower() for tag in tags or () if tag.strip()})
        note = Note(
            id=next(self._ids),
            title=title,
            text=text,
            tags=clean_tags,
            created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        )
        self._notes.append(note)
        return note

    def recent(self, tag: str | None = None, limit: int = MAX_RESULTS) -> list[Note]:
        """The most recent ``limit`` notes (optionally only those tagged ``tag``), oldest first."""
        wanted = tag.strip().lower() if tag else None
        notes = [note for note in self._notes if wanted is None or wanted in note["tags"]]
        return notes[-_clamp(limit) :]

    def search(self, query: str, limit: int = MAX_RESULTS) -> list[Note]:
        """Notes whose title, text or tags contain every word of ``query`` (case-insensitive)."""
        words = query.lower().split()
        if not words:
            raise ValueError("query must contain at least one word")
        found = [note for note in self._notes if all(word in _haystack(note) for word in words)]
        return found[: _clamp(limit)]


def _clamp(limit: int) -> int:
    if limit < 1:
        raise ValueError("limit must be at least 1")
    return min(limit, MAX_RESULTS)


def _haystack(note: Note) -> str:
    return " ".join((note["title"], note["text"], *note["tags"])).lower()


def build_server(notebook: Notebook | None = None) -> MCPServer:
    """The notes server; its tools share ``notebook`` (a fresh one by default)."""
    book = notebook if notebook is not None else Notebook()
    server = MCPServer(
        "vmcp-example-notes",
        version="1.0.0",
        instructions="An in-memory notebook: add notes, list them, search them. Nothing is persisted.",
        log_level="WARNING",
    )

    # The tools are coroutines although they never await: the SDK runs synchronous tools
    # on worker threads, and the notebook is not thread-safe.  On the event loop, calls
    # take turns.

    @server.tool()
    async def add_note(title: str, text: str, tags: list[str] | None = None) -> Note:
        """Add a note and return it with its id.  Tags are optional labels for list_notes."""
        with bad_arguments_reported():
            return book.add(title, text, tags)

    @server.tool()
    async def list_notes(tag: str | None = None, limit: int = 20) -> list[Note]:
        """List the most recent notes, oldest first; pass ``tag`` to keep only notes with it."""
        with bad_arguments_reported():
            return book.recent(tag, limit)

    @server.tool()
    async def search_notes(query: str, limit: int = 20) -> list[Note]:
        """Find notes containing every word of ``query`` in their title, text or tags."""
        with bad_arguments_reported():
            return book.search(query, limit)

    return server


def main(argv: list[str] | None = None) -> None:
    """Serve the notebook over stdio until the client closes stdin."""
    parser = argparse.ArgumentParser(
        prog="python -m vmcp_actors.examples.notes_server",
        description="Example MCP server (stdio): an in-memory notebook.",
    )
    parser.parse_args(argv)
    build_server().run("stdio")


if __name__ == "__main__":
    main()
