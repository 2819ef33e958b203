"""Dotted / indexed paths into nested spec dictionaries.

Grammar (one path names one leaf of a nested spec)::

    path     := first rest*
    first    := name | bracket
    rest     := "." name | bracket
    name     := one or more characters other than  . [ ] " ' and whitespace
    bracket  := "[" digits "]"          list index (0-based, never negative)
              | "[" quoted "]"          a mapping key that contains dots etc.
    quoted   := '"' ... '"' | "'" ... "'"   (backslash escapes the quote and itself)

Examples: ``train.optim.lr``, ``dataset.train_data_sources[0].image_dir``,
``dataset.label_map["walk.fast"]``.

A bare name made only of digits (``gpu_ids.0``) stays the string ``"0"`` in
the parsed tuple; when the walk meets a *list* at that point it is used as an
index, so ``train.gpu_ids.0`` and ``train.gpu_ids[0]`` reach the same leaf.

Specs never store dotted keys: :func:`set_path` walks (and creates) the
nested containers and assigns at the leaf.  Every impossible walk raises
:class:`~tao_automl.errors.SpecError` naming the path and the value found.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from tao_automl.errors import SpecError, describe

__all__ = ["Path", "parse_path", "format_path", "get_path", "set_path", "has_path", "flatten"]

Segment = str | int
Path = tuple[Segment, ...]

_NAME = re.compile(r"[^.\[\]\"'\s]+")
_BARE_OK = re.compile(r"[^.\[\]\"'\s]+\Z")
_MISSING: Any = object()


def _bad(path: Any, pos: int, why: str) -> SpecError:
    return SpecError.from_message(
        describe(
            f"invalid spec path ({why} at position {pos})",
            key=path,
            expected='dotted/indexed notation such as a.b[0].c or a["x.y"]',
        ),
        key=path,
        expected="dotted/indexed path",
    )


def _read_quoted(text: str, pos: int) -> tuple[str, int]:
    quote = text[pos]
    out: list[str] = []
    i = pos + 1
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text) and text[i + 1] in (quote, "\\"):
            out.append(text[i + 1])
            i += 2
            continue
        if ch == quote:
            return "".join(out), i + 1
        out.append(ch)
        i += 1
    raise _bad(text, pos, "unterminated quoted key")


def _read_bracket(text: str, pos: int) -> tuple[Segment, int]:
    i = pos + 1
    if i < len(text) and text[i] in "\"'":
        key, i = _read_quoted(text, i)
        if not key:
            raise _bad(text, pos, "empty quoted key")
    else:
        m = re.compile(r"-?\d+").match(text, i)
        if not m:
            raise _bad(text, pos, "expected an index or a quoted key inside [ ]")
        if m.group().startswith("-"):
            raise SpecError("negative list index in spec path", key=text, value=int(m.group()),
                            expected="an index >= 0 (an index equal to the list length appends)")
        key, i = int(m.group()), m.end()
    if i >= len(text) or text[i] != "]":
        raise _bad(text, i, "missing ']'")
    return key, i + 1


def parse_path(path: str | Iterable[Segment]) -> Path:
    """Parse ``"a.b[0].c"`` into ``("a", "b", 0, "c")``.

    A tuple/list of segments is validated and returned as a tuple.  Anything
    malformed raises :class:`SpecError` (never another exception type).
    """
    if isinstance(path, (tuple, list)):
        segs: list[Segment] = []
        for seg in path:
            if isinstance(seg, bool) or not isinstance(seg, (str, int)) or seg == "":
                raise SpecError("invalid spec path segment", key=path, value=seg,
                                expected="non-empty str keys and int indices")
            if isinstance(seg, int) and seg < 0:
                raise SpecError("negative list index in spec path", key=path, value=seg,
                                expected="an index >= 0")
            segs.append(seg)
        if not segs:
            raise SpecError("empty spec path", key=path)
        return tuple(segs)
    if not isinstance(path, str):
        raise SpecError("spec path must be a string", key=path, expected="dotted/indexed notation")
    if not path:
        raise _bad(path, 0, "empty path")
    out: list[Segment] = []
    i = 0
    n = len(path)
    first = True
    while i < n:
        ch = path[i]
        if ch == "[":
            seg, i = _read_bracket(path, i)
            out.append(seg)
        elif ch == "." and not first:
            i += 1
            m = _NAME.match(path, i)
            if not m:
                raise _bad(path, i, "expected a key name after '.'")
            out.append(m.group())
            i = m.end()
        elif first:
            m = _NAME.match(path, i)
            if not m:
                raise _bad(path, i, f"unexpected character {ch!r}")
            out.append(m.group())
            i = m.end()
        else:
            raise _bad(path, i, f"unexpected character {ch!r}")
        first = False
    return tuple(out)


def format_path(path: str | Iterable[Segment]) -> str:
    """Inverse of :func:`parse_path`: ``("a", 0, "x.y")`` -> ``'a[0]["x.y"]'``."""
    segs = parse_path(path)
    parts: list[str] = []
    for k, seg in enumerate(segs):
        if isinstance(seg, int):
            parts.append(f"[{seg}]")
        elif _BARE_OK.match(seg):
            parts.append(seg if k == 0 else "." + seg)
        else:
            esc = seg.replace("\\", "\\\\").replace('"', '\\"')
            parts.append(f'["{esc}"]')
    return "".join(parts)


def _as_index(seg: Segment, container: list, path: Path) -> int | None:
    if isinstance(seg, int):
        return seg
    if seg.isdigit():
        return int(seg)
    return None


def _step(node: Any, seg: Segment, path: Path, depth: int) -> tuple[bool, Any]:
    """One read step: (found, child)."""
    if isinstance(node, Mapping):
        if seg in node:
            return True, node[seg]
        return False, None
    if isinstance(node, list):
        idx = _as_index(seg, node, path)
        if idx is None:
            raise _walk_error(path, depth, node, "a mapping key was used on a list")
        return (idx < len(node)), (node[idx] if idx < len(node) else None)
    raise _walk_error(path, depth, node, "cannot walk into a scalar")


def _walk_error(path: Path, depth: int, found: Any, why: str) -> SpecError:
    where = format_path(path[:depth]) if depth else "<spec root>"
    return SpecError(f"impossible spec path: {why} (at '{where}')", key=format_path(path), value=found,
                     expected="a mapping for a key segment or a list for an index segment")


def get_path(obj: Any, path: str | Iterable[Segment], default: Any = _MISSING) -> Any:
    """Return the leaf at ``path``; ``default`` when absent (else SpecError).

    Walking *through* a scalar raises SpecError even when a default is given:
    that is a structural error, not an absent key.
    """
    segs = parse_path(path)
    node = obj
    for depth, seg in enumerate(segs):
        found, node = _step(node, seg, segs, depth)
        if not found:
            if default is _MISSING:
                raise SpecError("spec path not found", key=format_path(segs), expected="an existing key")
            return default
    return node


def has_path(obj: Any, path: str | Iterable[Segment]) -> bool:
    """True when ``path`` names an existing leaf (structural errors still raise)."""
    return get_path(obj, path, _MISSING_SENTINEL) is not _MISSING_SENTINEL


_MISSING_SENTINEL = object()


def set_path(obj: Any, path: str | Iterable[Segment], value: Any) -> None:
    """Assign ``value`` at ``path`` inside ``obj`` (in place).

    Missing intermediate containers are created: a dict for a key segment, a
    list for an index segment.  An index equal to a list's length appends; a
    larger one, a key on a list, or any walk into a scalar raises SpecError
    naming the path and the value found there.
    """
    segs = parse_path(path)
    if not isinstance(obj, (dict, list)):
        raise _walk_error(segs, 0, obj, "the spec root is not a mapping")
    node: Any = obj
    for depth, seg in enumerate(segs):
        last = depth == len(segs) - 1
        nxt = None if last else segs[depth + 1]
        if isinstance(node, dict):
            if isinstance(seg, int) and seg not in node:
                raise _walk_error(segs, depth, node, "a list index was used on a mapping")
            if last:
                node[seg] = value
                return
            child = node.get(seg, _MISSING)
            if child is _MISSING or child is None:
                child = [] if isinstance(nxt, int) else {}
                node[seg] = child
            node = child
        elif isinstance(node, list):
            idx = _as_index(seg, node, segs)
            if idx is None:
                raise _walk_error(segs, depth, node, "a mapping key was used on a list")
            if idx > len(node):
                raise SpecError(f"list index {idx} out of range at '{format_path(segs[:depth]) or '<spec root>'}'",
                                key=format_path(segs), value=node,
                                expected=f"an index <= {len(node)} (equal appends)")
            if last:
                if idx == len(node):
                    node.append(value)
                else:
                    node[idx] = value
                return
            if idx == len(node):
                node.append([] if isinstance(nxt, int) else {})
            elif node[idx] is None:
                node[idx] = [] if isinstance(nxt, int) else {}
            node = node[idx]
        else:
            raise _walk_error(segs, depth, node, "cannot walk into a scalar")


def flatten(spec: Mapping[str, Any], *, lists: bool = False) -> dict[str, Any]:
    """Flatten nested mappings into ``{dotted_path: leaf}``.

    Lists are leaves unless ``lists=True`` (then ``a[0]`` style entries are
    produced).  Empty mappings are kept as ``{}`` leaves so nothing is lost.
    Keys needing quotes are written as ``["x.y"]``.
    """
    out: dict[str, Any] = {}

    def rec(node: Any, prefix: Path) -> None:
        if isinstance(node, Mapping) and node:
            for k, v in node.items():
                rec(v, prefix + (str(k),))
        elif lists and isinstance(node, list) and node:
            for i, v in enumerate(node):
                rec(v, prefix + (i,))
        elif prefix:
            out[format_path(prefix)] = node

    rec(spec, ())
    return out
