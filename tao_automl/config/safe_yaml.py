"""The one YAML loader of the package: safe, and bounded.

Every YAML file or text tao_automl reads (skill_info.yaml, spec templates,
versions.yaml, the ``references/automl.yaml`` sidecar, CLI plans, spec
files) goes through :func:`safe_load` / :func:`load_file`.  On top of
``yaml.SafeLoader`` (libyaml's C loader when available) it refuses, with a
:class:`YAMLLimitError` (a ``yaml.YAMLError``, so every caller's existing
"does not parse" error names the file):

* text larger than :data:`MAX_BYTES`;
* a document whose tree, with every alias expanded, has more than
  :data:`MAX_NODES` nodes ("billion laughs" alias bombs compose into a small
  shared graph that explodes when copied, dumped or walked);
* nesting deeper than :data:`MAX_DEPTH`, and recursive (self-referencing)
  aliases;
* bytes that are not UTF-8 (:func:`load_file`).

The check runs on the composed node graph, before any Python object is
built, and costs one pass over the distinct nodes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

__all__ = ["MAX_BYTES", "MAX_DEPTH", "MAX_NODES", "YAMLLimitError", "decode_utf8", "load_file",
           "safe_load"]

#: Largest YAML text accepted (bytes).
MAX_BYTES = 16 * 1024 * 1024
#: Most nodes in a document with every alias expanded.
MAX_NODES = 1_000_000
#: Deepest nesting of mappings/sequences.
MAX_DEPTH = 200

_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class YAMLLimitError(yaml.YAMLError):
    """The YAML text is too large, too deep, an alias bomb, recursive or not UTF-8."""


def decode_utf8(data: bytes) -> str:
    """``data`` as text; :class:`YAMLLimitError` naming the first bad byte."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise YAMLLimitError(
            f"not UTF-8 text: byte 0x{data[exc.start]:02x} at offset {exc.start} ({exc.reason})"
        ) from None


def _check_graph(root: yaml.Node) -> None:
    """Expanded node count and depth of the composed graph, iteratively
    (memoised per node, so shared aliases cost one visit)."""
    size: dict[int, int] = {}
    depth: dict[int, int] = {}
    on_path: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        nid = id(node)
        if done:
            on_path.discard(nid)
            kids = _children(node)
            size[nid] = 1 + sum(size[id(k)] for k in kids)
            depth[nid] = 1 + max((depth[id(k)] for k in kids), default=0)
            if size[nid] > MAX_NODES:
                raise YAMLLimitError(
                    f"document too large once its aliases are expanded: more than {MAX_NODES} "
                    "nodes (an alias bomb?)")
            if depth[nid] > MAX_DEPTH:
                raise YAMLLimitError(f"document nested deeper than {MAX_DEPTH} levels")
            continue
        if nid in size:
            continue
        if nid in on_path:
            raise YAMLLimitError("recursive alias: a node contains itself")
        on_path.add(nid)
        if len(on_path) > MAX_DEPTH:
            raise YAMLLimitError(f"document nested deeper than {MAX_DEPTH} levels")
        stack.append((node, True))
        for kid in _children(node):
            if id(kid) not in size:
                stack.append((kid, False))


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    return []


def safe_load(text: str | bytes) -> Any:
    """``yaml.safe_load`` with the bounds above (:class:`YAMLLimitError`)."""
    if isinstance(text, bytes):
        if len(text) > MAX_BYTES:
            raise YAMLLimitError(f"YAML text too large: {len(text)} bytes; at most {MAX_BYTES}")
        text = decode_utf8(text)
    if len(text) > MAX_BYTES:
        raise YAMLLimitError(f"YAML text too large: {len(text)} characters; at most {MAX_BYTES}")
    loader = _LOADER(text)
    try:
        try:
            node = loader.get_single_node()
        except RecursionError:
            raise YAMLLimitError(f"document nested deeper than {MAX_DEPTH} levels") from None
        if node is None:
            return None
        _check_graph(node)
        return loader.construct_document(node)
    finally:
        loader.dispose()


def load_file(path: str | Path) -> Any:
    """Read ``path`` (bounded size, UTF-8) and :func:`safe_load` it.
    ``OSError`` passes through; every content problem is a ``yaml.YAMLError``."""
    p = Path(path)
    size = p.stat().st_size
    if size > MAX_BYTES:
        raise YAMLLimitError(f"YAML file too large: {size} bytes; at most {MAX_BYTES}")
    return safe_load(p.read_bytes())
