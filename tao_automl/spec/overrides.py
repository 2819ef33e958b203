"""Apply user overrides (dotted/indexed keys, shorthand aliases) to a spec.

Rules:

* A key is parsed with :func:`~tao_automl.spec.paths.parse_path`; the value is
  assigned at the nested leaf (never stored under a dotted key).
* A key that is a ``spec_shorthand_keys`` alias (``num_epochs`` ->
  ``train.num_epochs``) is rewritten to its target, unless the spec itself
  has a top-level key of that exact name: exact spec keys always win.
* The same leaf given twice (alias and full path, or two aliases) with
  different values raises :class:`SpecError` naming both keys.  Equal values
  are accepted.
* When one key is a prefix of another (``dataset.label_map`` and
  ``dataset.label_map.walk``), the shorter is applied first so the more
  specific one refines it.
* Values are deep-copied; a mapping value replaces the leaf as a whole (it is
  not merged), so ``dataset.label_map: {...}`` sets exactly that map.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import attrs

from tao_automl.errors import SpecError
from tao_automl.spec.paths import Path, format_path, parse_path, set_path

__all__ = ["CanonicalOverrides", "canonicalize", "apply_canonical", "apply_overrides"]


@attrs.frozen
class CanonicalOverrides:
    """Overrides keyed by parsed path, with the key each value was given as."""

    values: dict[Path, Any]
    given_as: dict[Path, str]
    notes: list[str]

    def dotted(self) -> dict[str, Any]:
        """``{canonical dotted key: value}``."""
        return {format_path(p): v for p, v in self.values.items()}


def canonicalize(
    overrides: Mapping[str, Any] | None,
    *,
    shorthand: Mapping[str, str] | None = None,
    spec: Mapping[str, Any] | None = None,
    what: str = "override",
) -> CanonicalOverrides:
    """Resolve aliases, parse every key and detect conflicting duplicates."""
    values: dict[Path, Any] = {}
    given: dict[Path, str] = {}
    notes: list[str] = []
    shorthand = dict(shorthand or {})
    for key, value in (overrides or {}).items():
        if not isinstance(key, str):
            raise SpecError(f"{what} key must be a string", key=key, value=value,
                            expected="a dotted/indexed spec path or shorthand alias")
        target = key
        if key in shorthand:
            if spec is not None and key in spec:
                notes.append(f"{what} '{key}': the spec has a top-level key of that name, "
                             f"so the shorthand alias to '{shorthand[key]}' was not used")
            else:
                target = shorthand[key]
                notes.append(f"{what} '{key}' is shorthand for '{target}'")
        path = parse_path(target)
        if path in values:
            if values[path] != value:
                raise SpecError(f"conflicting {what}s for one spec leaf: '{given[path]}' = "
                                f"{values[path]!r} and '{key}' = {value!r}", key=format_path(path),
                                value=value, expected="one value per leaf (drop the alias or the full path)")
            continue
        values[path] = copy.deepcopy(value)
        given[path] = key
    return CanonicalOverrides(values=values, given_as=given, notes=notes)


def apply_canonical(spec: dict[str, Any], values: Mapping[Path, Any]) -> None:
    """Assign every ``path -> value`` in place, shorter paths first."""
    for path in sorted(values, key=len):
        set_path(spec, path, copy.deepcopy(values[path]))


def apply_overrides(
    spec: Mapping[str, Any],
    overrides: Mapping[str, Any] | None,
    *,
    shorthand: Mapping[str, str] | None = None,
    key_defaults: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Return a deep copy of ``spec`` with ``key_defaults`` then ``overrides`` applied."""
    out = copy.deepcopy(dict(spec))
    if key_defaults:
        kd = canonicalize(key_defaults, shorthand=shorthand, spec=out, what="key default")
        apply_canonical(out, kd.values)
    ov = canonicalize(overrides, shorthand=shorthand, spec=out)
    apply_canonical(out, ov.values)
    return out
