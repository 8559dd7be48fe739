"""What one backend offers: its tools, resources, resource templates and prompts, as one value.

A :class:`BackendCatalogue` is built from the backend's own listings (fetched in full, every
page, by :mod:`vmcp_actors.backend.capabilities`) and replaced as a whole when a
``notifications/*/list_changed`` arrives, so readers on any thread always see one
consistent listing.  Items are the SDK's own types, unchanged: a vMCP passes them on.
"""

from __future__ import annotations

import enum

import attrs
import mcp_types as types

__all__ = ["BackendCatalogue", "ListKind"]


class ListKind(enum.StrEnum):
    """A listing a backend can announce a change of (``notifications/<kind>/list_changed``)."""

    TOOLS = "tools"
    RESOURCES = "resources"
    PROMPTS = "prompts"


@attrs.frozen
class BackendCatalogue:
    """One backend's capabilities as it listed them (SDK types, as sent).

    ``resources`` covers ``resources/templates/list`` too: the two are announced by the
    same ``notifications/resources/list_changed``.  The ``supports_*`` flags come from
    the capabilities the backend declared at ``initialize``.
    """

    backend: str
    tools: tuple[types.Tool, ...] = ()
    resources: tuple[types.Resource, ...] = ()
    resource_templates: tuple[types.ResourceTemplate, ...] = ()
    prompts: tuple[types.Prompt, ...] = ()
    supports_subscribe: bool = False
    supports_logging: bool = False
    supports_completions: bool = False

    @property
    def tool_names(self) -> tuple[str, ...]:
        """The backend's own tool names, in its order."""
        return tuple(tool.name for tool in self.tools)

    def changed_kinds(self, other: BackendCatalogue | None) -> frozenset[ListKind]:
        """The listings that differ from ``other`` (all of them when there is none)."""
        if other is None:
            return frozenset(ListKind)
        changed: set[ListKind] = set()
        if self.tools != other.tools:
            changed.add(ListKind.TOOLS)
        if self.resources != other.resources or self.resource_templates != other.resource_templates:
            changed.add(ListKind.RESOURCES)
        if self.prompts != other.prompts:
            changed.add(ListKind.PROMPTS)
        return frozenset(changed)
