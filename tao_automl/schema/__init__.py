"""The TAO schema dialect: typed parameters for the schema-gated search space."""

from tao_automl.schema.model import KINDS, NUMERIC_KINDS, ParamDef, TaoSchema
from tao_automl.schema.parse import load_schema, normalize_kind, parse_schema

__all__ = ["KINDS", "NUMERIC_KINDS", "ParamDef", "TaoSchema", "load_schema", "normalize_kind",
           "parse_schema"]
