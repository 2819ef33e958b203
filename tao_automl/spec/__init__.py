"""Spec building: templates, dotted/indexed overrides, data sources, spec_params.

See :class:`~tao_automl.spec.builder.SpecBuilder` for the whole pipeline and
the precedence of its layers.
"""

from tao_automl.spec.builder import BuiltSpec, SpecBuilder
from tao_automl.spec.data_sources import DataResolution, resolve_data_sources
from tao_automl.spec.outputs import route_outputs
from tao_automl.spec.overrides import apply_overrides, canonicalize
from tao_automl.spec.paths import flatten, format_path, get_path, has_path, parse_path, set_path
from tao_automl.spec.spec_params import (
    CheckpointProvider,
    SpecParamContext,
    resolve_spec_params,
)
from tao_automl.spec.templates import dump_spec, load_spec_file, write_spec

__all__ = [
    "BuiltSpec",
    "CheckpointProvider",
    "DataResolution",
    "SpecBuilder",
    "SpecParamContext",
    "apply_overrides",
    "canonicalize",
    "dump_spec",
    "flatten",
    "format_path",
    "get_path",
    "has_path",
    "load_spec_file",
    "parse_path",
    "resolve_data_sources",
    "resolve_spec_params",
    "route_outputs",
    "set_path",
    "write_spec",
]
