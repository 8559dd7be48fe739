"""Loading YAML strictly and with bounded work: no duplicate keys, no alias bombs, no huge documents.

PyYAML composes a document into a graph of nodes and then constructs Python values
from it.  An alias is the *same* node as its anchor, so a nine-line "billion laughs"
document composes to a few dozen nodes and constructs to shared lists -- cheap so far
-- but everything after (validation walking the value, ``repr`` in an error message)
walks the expanded tree: 9**8 strings took 30 s and 412 MB.  So the work is bounded
where it starts:

* while composing, every node (an alias included) is counted and composition stops
  past :data:`MAX_YAML_VALUES`, so even a megabyte of ``[1,1,1,...]`` costs at most that
  many nodes of work and memory;
* before constructing, the graph's size *with every alias expanded* is summed (each node
  visited once) and a document past the limit is refused, as is an alias inside the
  value it refers to (an infinite value).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Final

import yaml

from vmcp_actors.config.fields import show

__all__ = ["MAX_YAML_VALUES", "RecursiveAliasError", "TooManyValuesError", "load_bounded_yaml"]

#: The most values (scalars, lists, mappings) a YAML document may hold, counting each
#: alias as every value it repeats.  A config of 50 backends holds about a thousand.
MAX_YAML_VALUES: Final = 20_000


class TooManyValuesError(Exception):
    """The document holds more than ``MAX_YAML_VALUES`` values once its aliases are expanded."""


class RecursiveAliasError(Exception):
    """An alias refers to a node that contains it: the value would be infinite."""


class _StrictLoader(yaml.SafeLoader):
    """``SafeLoader`` that rejects duplicate keys and stops composing past ``limit`` nodes.

    A duplicated ``url:`` would otherwise override the first without a word (PyYAML
    keeps the last).  Merge keys (``<<``) are left alone: overriding merged values is
    what they are for.
    """

    def __init__(self, stream: str, limit: int) -> None:
        self.values_composed = 0
        self.value_limit = limit
        super().__init__(stream)

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        """Count the node (an alias counts as one here; its expansion is checked afterwards)."""
        self.values_composed += 1
        if self.values_composed > self.value_limit:
            raise TooManyValuesError
        return super().compose_node(parent, index)

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        """Refuse a repeated scalar key, then build the mapping as ``SafeLoader`` does."""
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge" or not isinstance(key_node, yaml.ScalarNode):
                continue
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"found duplicate key {show(key)}", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _children(node: yaml.Node) -> Iterator[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        yield from node.value
    elif isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            yield key
            yield value


def expanded_size(root: yaml.Node, limit: int) -> int:
    """How many values ``root`` stands for with every alias expanded, checked against ``limit``.

    Each node is visited once (sizes are memoised by identity) and iteratively, so
    neither a wide alias fan-out nor a deep document costs more than the graph itself.

    Raises:
        TooManyValuesError: as soon as the running total passes ``limit``.
        RecursiveAliasError: for an alias inside the node it refers to.
    """
    sizes: dict[int, int] = {}
    on_path = {id(root)}
    # Each frame: the node, its remaining children, and the size counted so far.
    stack: list[tuple[yaml.Node, Iterator[yaml.Node], int]] = [(root, _children(root), 1)]
    while stack:
        node, children, total = stack.pop()
        child = next(children, None)
        if child is None:
            on_path.discard(id(node))
            sizes[id(node)] = total
            if stack:
                parent, siblings, parent_total = stack.pop()
                stack.append((parent, siblings, _bounded(parent_total + total, limit)))
            continue
        if id(child) in on_path:
            raise RecursiveAliasError
        known = sizes.get(id(child))
        if known is not None:
            stack.append((node, children, _bounded(total + known, limit)))
            continue
        stack.append((node, children, total))
        on_path.add(id(child))
        stack.append((child, _children(child), 1))
    return sizes[id(root)]


def _bounded(total: int, limit: int) -> int:
    if total > limit:
        raise TooManyValuesError
    return total


def load_bounded_yaml(text: str, limit: int = MAX_YAML_VALUES) -> object:
    """``yaml.safe_load`` with duplicate keys refused and the work bounded by ``limit`` values.

    Raises:
        TooManyValuesError: more than ``limit`` values, composed or expanded.
        RecursiveAliasError: a recursive document.
        yaml.YAMLError: a syntax error or a duplicate key.
    """
    loader = _StrictLoader(text, limit)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        expanded_size(node, limit)
        return loader.construct_document(node)
    finally:
        loader.dispose()
