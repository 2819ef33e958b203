"""cattrs conversion of skill_info dicts into the attrs classes, keeping
unknown keys in ``extra`` and turning conversion failures into SkillError.

The hooks are registered on the package's one converter
(:data:`tao_automl.config.convert.converter`)."""

from __future__ import annotations

from typing import Any

import attrs
import cattrs
from cattrs.gen import make_dict_structure_fn

from tao_automl.config.convert import converter
from tao_automl.errors import SkillError
from tao_automl.skill.model import ActionInfo, DataSource, Execution, IOSpec, SkillInfo

__all__ = ["converter", "structure"]


def _split_extra(cls: type):
    names = {f.name for f in attrs.fields(cls)} - {"extra"}
    # the keys it gets are the class's own fields plus ``extra``, so the shared
    # converter's forbid_extra_keys never sees an unknown one
    inner = make_dict_structure_fn(cls, converter)

    def hook(data: Any, _t: type) -> Any:
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise TypeError(f"expected a mapping for {cls.__name__}, got {type(data).__name__}")
        known = {k: v for k, v in data.items() if k in names and v is not None}
        extra = {k: v for k, v in data.items() if k not in names}
        extra.update(known.pop("extra", None) or {})
        return inner({**known, "extra": extra}, cls)

    return hook


for _cls in (IOSpec, Execution, ActionInfo, DataSource, SkillInfo):
    converter.register_structure_hook(_cls, _split_extra(_cls))


def structure(data: Any, cls: type, *, file: Any, key: str | None = None) -> Any:
    """Structure ``data`` into ``cls``; SkillError naming file/key on failure."""
    try:
        return converter.structure(data, cls)
    except Exception as exc:  # cattrs raises ClassValidationError / TypeError / ValueError
        detail = "; ".join(cattrs.transform_error(exc)) if isinstance(
            exc, cattrs.BaseValidationError) else str(exc)
        raise SkillError(f"cannot read {cls.__name__}", file=file, key=key, value=detail,
                         expected=f"a mapping matching {cls.__name__}") from exc
