"""The one cattrs converter: every dict/YAML/JSON <-> attrs conversion of the
package goes through :data:`converter`.

Strict by design: unknown keys are refused (``forbid_extra_keys``), and the
scalar hooks never coerce (``"3"`` is not an ``int``, ``1`` is not a ``bool``,
``True`` is not a number).  Modules that own a class register its special
hooks on this same converter (for example the skill loader keeps unknown keys
of ``skill_info.yaml`` in ``extra``; settings store an API key as a reference).

:func:`structure` turns a conversion failure into the caller's
:class:`~tao_automl.errors.AutoMLError` subclass naming the file, the key path
as written, the value and what was expected.
"""

from __future__ import annotations

import re
from typing import Any

import cattrs

from tao_automl.errors import AutoMLError, SettingsError, describe

__all__ = ["converter", "structure", "unstructure", "first_error"]

converter = cattrs.Converter(forbid_extra_keys=True)


def _strict(kind: type, accepts: tuple[type, ...], refuses: tuple[type, ...] = (bool,)) -> None:
    def hook(value: Any, _t: type) -> Any:
        if isinstance(value, refuses) or not isinstance(value, accepts):
            raise TypeError(f"expected {kind.__name__}, got {type(value).__name__} {value!r}")
        return kind(value) if kind is float else value

    converter.register_structure_hook(kind, hook)


_strict(int, (int,))
_strict(float, (int, float))
_strict(str, (str,), ())
_strict(bool, (bool,), ())


def first_error(exc: BaseException) -> tuple[str | None, str]:
    """(dotted key path, message) of the first leaf error cattrs reports."""
    if isinstance(exc, cattrs.BaseValidationError):
        for line in cattrs.transform_error(exc, path="$"):
            text, _, where = line.rpartition(" @ ")
            path = where.removeprefix("$").replace("['", ".").replace("']", "")
            path = re.sub(r"\[(\d+)\]", r".\1", path).lstrip(".")
            extra = re.match(r"extra fields found \(([^,)]+)", text)
            if extra:  # name the unknown key itself
                path = ".".join(p for p in (path, extra.group(1).strip()) if p)
            return path or None, text or line
    return None, str(exc)


def structure(data: Any, cls: Any, *, file: Any = None, key: str | None = None,
              error: type[AutoMLError] = SettingsError, expected: str | None = None) -> Any:
    """``converter.structure(data, cls)``; on failure ``error`` naming ``file``,
    the key path (``key`` joined with the failing field) and the value there."""
    try:
        return converter.structure(data, cls)
    except AutoMLError:
        raise
    except Exception as exc:  # cattrs: ClassValidationError, IterableValidationError, TypeError, ...
        sub, why = first_error(exc)
        where = ".".join(p for p in (key, sub) if p) or None
        value = _at(data, sub) if sub else data
        if "extra fields found" in why:
            why = "unknown key"
        name = getattr(cls, "__name__", str(cls))
        raise error.from_message(describe(f"cannot read {name} ({why})", file=file, key=where, value=value,
                             expected=expected or f"a mapping matching {name}"),
                    file=file, key=where, value=value, expected=expected) from exc


def unstructure(obj: Any) -> Any:
    """``converter.unstructure(obj)`` (plain dicts, lists and scalars)."""
    return converter.unstructure(obj)


def _at(data: Any, path: str) -> Any:
    cur = data
    for part in path.split("."):
        if isinstance(cur, dict) and part in cur:
            cur = cur[part]
        elif isinstance(cur, list) and part.isdigit() and int(part) < len(cur):
            cur = cur[int(part)]
        else:
            return None
    return cur
