"""Load YAML so that every mapping and list remembers the line each entry came from.

Errors later in validation can then name `file:line`; nothing here knows the
script format.
"""

from __future__ import annotations

from typing import Any

import yaml


class LineDict(dict[Any, Any]):
    """A YAML mapping with its own line and the line of each key (1-based)."""

    line: int = 0
    key_lines: dict[Any, int]

    def line_of(self, key: Any) -> int:
        """Return the line of `key`, or the mapping's own line if unknown."""
        return self.key_lines.get(key, self.line)


class LineList(list[Any]):
    """A YAML sequence with its own line and the line of each item (1-based)."""

    line: int = 0
    item_lines: list[int]

    def line_of(self, index: int) -> int:
        """Return the line of item `index`, or the list's own line if unknown."""
        return self.item_lines[index] if index < len(self.item_lines) else self.line


class DuplicateKeyError(yaml.MarkedYAMLError):
    """The same key twice in one mapping: YAML allows it silently, we do not."""


class _LineLoader(yaml.SafeLoader):
    pass


def _construct_map(loader: _LineLoader, node: yaml.MappingNode) -> LineDict:
    loader.flatten_mapping(node)
    result = LineDict()
    result.line = node.start_mark.line + 1
    result.key_lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        try:
            hash(key)
        except TypeError:
            raise yaml.constructor.ConstructorError(
                None, None, "a mapping key must be a plain word", key_node.start_mark
            ) from None
        if key in result:
            raise DuplicateKeyError(None, None, f"duplicate key '{key}'", key_node.start_mark)
        result[key] = loader.construct_object(value_node, deep=True)
        result.key_lines[key] = key_node.start_mark.line + 1
    return result


def _construct_seq(loader: _LineLoader, node: yaml.SequenceNode) -> LineList:
    result = LineList(loader.construct_object(child, deep=True) for child in node.value)
    result.line = node.start_mark.line + 1
    result.item_lines = [child.start_mark.line + 1 for child in node.value]
    return result


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_map)
_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_seq)


def load_yaml(text: str) -> Any:
    """Parse one YAML document into plain values, LineDict and LineList.

    Raises yaml.YAMLError (with a `problem_mark` when the parser knows the place).
    """
    return yaml.load(text, Loader=_LineLoader)
