"""Typed view of a TAO schema: :class:`ParamDef` and :class:`TaoSchema`."""

from __future__ import annotations

import math
from typing import Any

import attrs

__all__ = ["KINDS", "NUMERIC_KINDS", "ParamDef", "TaoSchema"]

#: Every normalized parameter kind.  Standard JSON Schema types and ``anyOf``
#: nodes are mapped onto these (``integer`` -> ``int``, ``object`` ->
#: ``collection``, ``string`` + ``enum`` -> ``categorical`` ...).
KINDS = (
    "int",
    "float",
    "bool",
    "string",
    "categorical",
    "collection",
    "list",
    "list_1_backbone",
    "list_2",
    "list_3",
    "ordered_int",
    "subset_list",
    "optional_list",
)
NUMERIC_KINDS = ("int", "float", "ordered_int")


def _finite(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


@attrs.frozen
class ParamDef:
    """One node of a TAO schema (a leaf or a ``collection``).

    ``minimum``/``maximum`` are kept exactly as written (they may be infinite,
    ``None`` or, for ``list_N`` kinds, lists).  ``automl_enabled`` is the
    *effective* flag: the node's own value when it has one, else ``True``
    (a parent collection's ``false`` is not inherited: it disables the
    collection node itself).  ``own_automl_enabled`` is the node's own value
    (``None`` when absent).  ``raw`` is the untouched schema node without its
    ``properties``.
    """

    path: str
    kind: str
    default: Any = None
    minimum: Any = None
    maximum: Any = None
    enum: tuple[Any, ...] | None = None
    option_weights: tuple[float, ...] | None = None
    math_cond: str | None = None
    depends_on: tuple[str, ...] = ()
    parent_param: Any = None
    automl_enabled: bool = True
    own_automl_enabled: bool | None = None
    popular: bool = False
    title: str | None = None
    description: str | None = None
    has_default: bool = False
    raw: dict = attrs.field(factory=dict, eq=False, repr=False)

    @property
    def is_leaf(self) -> bool:
        """``True`` for every kind but ``collection``."""
        return self.kind != "collection"

    @property
    def finite_minimum(self) -> float | None:
        """The minimum when it is a finite number, else ``None``."""
        return self.minimum if _finite(self.minimum) else None

    @property
    def finite_maximum(self) -> float | None:
        """The maximum when it is a finite number, else ``None``."""
        return self.maximum if _finite(self.maximum) else None


@attrs.frozen
class TaoSchema:
    """A parsed ``<action>.schema.json``.

    ``params`` maps dotted paths to :class:`ParamDef` for leaves *and*
    collections.  ``default_parameters`` is the ordered union of the top-level
    ``automl_default_parameters`` and those nested in collections;
    ``disabled_parameters`` likewise for ``automl_disabled_parameters``
    (applied by exact path, never by prefix).  ``popular`` holds dotted paths
    flagged popular anywhere in the file.  ``source`` names the file.
    """

    params: dict[str, ParamDef]
    default_parameters: list[str] = attrs.field(factory=list)
    disabled_parameters: frozenset[str] = attrs.field(factory=frozenset, converter=frozenset)
    defaults: dict = attrs.field(factory=dict)
    popular: frozenset[str] = attrs.field(factory=frozenset, converter=frozenset)
    source: str = "<schema>"

    def get(self, path: str) -> ParamDef | None:
        """The :class:`ParamDef` at ``path`` or ``None``."""
        return self.params.get(path)

    def leaves(self) -> list[ParamDef]:
        """All non-collection parameters in file order."""
        return [p for p in self.params.values() if p.is_leaf]

    def is_disabled(self, path: str) -> bool:
        """Whether ``path`` may not be searched.

        A parameter is disabled when its exact path is listed in
        ``automl_disabled_parameters`` or its own ``automl_enabled`` is
        false; neither is inherited by descendants.  A node's own
        ``automl_enabled: true`` wins over a listing of its path.
        """
        p = self.params.get(path)
        if p is None:
            return True
        if p.own_automl_enabled is True:
            return False
        return path in self.disabled_parameters or not p.automl_enabled

    def disabled_reason(self, path: str) -> str | None:
        """Why ``path`` is disabled, or ``None`` if it is not."""
        p = self.params.get(path)
        if p is None:
            return "not in the schema"
        if not self.is_disabled(path):
            return None
        if path in self.disabled_parameters:
            return "listed in automl_disabled_parameters"
        return "automl_enabled: false"
