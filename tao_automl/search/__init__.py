"""Schema-gated search spaces: build, convert to Ray Tune, sample, decode, enforce."""

from tao_automl.search.build import build_search_space, flatten_scalars
from tao_automl.search.constraints import (
    KNOWN_CONSTRAINTS,
    coerce_constraints,
    constraints_from_skill,
)
from tao_automl.search.params import (
    CONSTRAINT_KINDS,
    Constraint,
    SearchParam,
    derive_range,
    is_log_range,
    parse_math_cond,
)
from tao_automl.search.space import SearchSpace

__all__ = [
    "CONSTRAINT_KINDS",
    "KNOWN_CONSTRAINTS",
    "Constraint",
    "SearchParam",
    "SearchSpace",
    "build_search_space",
    "coerce_constraints",
    "constraints_from_skill",
    "derive_range",
    "flatten_scalars",
    "is_log_range",
    "parse_math_cond",
]
