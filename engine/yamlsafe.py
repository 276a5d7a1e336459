"""YAML from users, parsed with limits: aliases may not expand the document past a node budget
(a "billion laughs" file is refused in milliseconds instead of running forever), an alias may
not contain itself, and a mapping may not give one key twice (YAML would silently keep the last
`cases:`). Errors name the file, line and column."""
from __future__ import annotations

from typing import Any

import yaml

_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml where PyYAML was built with it
MAX_NODES = 2_000_000  # with aliases expanded; 5,000 cases of a rich scenario need well under 1,000,000


class YamlError(ValueError):
    """YAML that is not parsed; the message names the file and the place."""


def _at(node: yaml.Node) -> str:
    mark = node.start_mark
    return f"line {mark.line + 1}, column {mark.column + 1}"


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _check(root: yaml.Node, source: str) -> None:
    sizes: dict[int, int] = {}
    open_: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        if done:
            open_.discard(key)
            sizes[key] = 1 + sum(sizes[id(c)] for c in _children(node))
            if sizes[key] > MAX_NODES:
                raise YamlError(f"{source}: at {_at(node)}: aliases expand this document past {MAX_NODES:,} "
                                "values; refused (write the values out, or use fewer nested aliases)")
            continue
        if key in sizes:
            continue
        if key in open_:
            raise YamlError(f"{source}: at {_at(node)}: an alias that contains itself")
        if isinstance(node, yaml.MappingNode):
            seen: dict[tuple[str, str], yaml.Node] = {}
            for k, _ in node.value:
                if isinstance(k, yaml.ScalarNode) and k.tag != "tag:yaml.org,2002:merge":
                    first = seen.setdefault((k.tag, k.value), k)
                    if first is not k:
                        raise YamlError(f"{source}: at {_at(k)}: key {k.value!r} is given twice in one mapping "
                                        f"(first at {_at(first)}); keep one")
        open_.add(key)
        stack.append((node, True))
        stack.extend((c, False) for c in _children(node) if id(c) not in sizes)


def load(text: str, source: str) -> Any:
    """The data of one YAML document, or YamlError naming `source`."""
    loader = _LOADER(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check(node, source)
        return loader.construct_document(node)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise YamlError(f"{source}: YAML syntax error{where}: {problem}") from None
    except RecursionError:
        raise YamlError(f"{source}: nested too deeply to read") from None
    finally:
        loader.dispose()
