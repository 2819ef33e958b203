"""``spec_params`` functions: values computed per job (output dirs, checkpoints).

A ``spec_params.<action>`` entry maps a spec key to a *function name* or a
literal.  Known functions:

=============================  ===============================================
``output_dir``                 ``ctx.output_dir`` (mandatory)
``parent_model``               checkpoint file of the parent job (mandatory)
``parent_model_folder``        checkpoint folder of the parent job (mandatory)
``resume_model``               checkpoint to resume from (optional)
``ptm``                        pretrained model (optional)
``ptm_if_no_resume_model``     ptm, but only when no resume checkpoint is set
``parent_model_or_ptm``        parent model, else ptm (optional)
``key``                        encryption key *reference*, see below
``create_onnx_file``           ``<output_dir>/model.onnx``
``create_engine_file``         ``<output_dir>/model.engine``
``create_cal_cache``           ``<output_dir>/cal.bin``
``create_pth_file``            ``<output_dir>/model.pth``
``create_inference_result_file_<x>``  ``<output_dir>/inference_results.json``
``create_evaluate_<what>_reid``       ``<output_dir>/<file>.png`` (cmc_plot ->
                               ``cmc_curve.png``, matches_plot ->
                               ``sampled_matches.png``, else ``<what>.png``)
=============================  ===============================================

Checkpoint values come first from the explicit context fields
(``parent_checkpoint``, ``parent_folder``, ``resume_checkpoint``, ``ptm``)
and otherwise from ``ctx.checkpoint_resolver.resolve(kind)`` with kind
``parent_model``, ``parent_model_folder``, ``resume_model`` or ``ptm``.

**Secrets.** ``key`` never puts a secret in the spec and never reads
``os.environ``.  When ``ctx.encryption_key_env`` names an environment
variable, the value is the OmegaConf/Hydra interpolation
``${oc.env:NAME}``: TAO PyTorch entrypoints resolve it inside the container
from the job's environment, so the platform must forward ``NAME`` to the job.
Without ``encryption_key_env`` the template's value is kept.  A user who
passes ``encryption_key`` explicitly in overrides wins (overrides apply after
spec_params); that value is then the user's own choice.

A string that looks like a function of these families (``create_*``,
``parent_model*``, ``ptm*``, ``resume_model*``) but is not known raises
SpecError; any other value is a literal and passes through unchanged.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

import attrs

from tao_automl.errors import SpecError
from tao_automl.spec.data_sources import join_uri
from tao_automl.spec.paths import format_path, parse_path

__all__ = [
    "CheckpointProvider",
    "SpecParamContext",
    "SpecParamResolution",
    "KNOWN_FUNCTIONS",
    "is_function_name",
    "resolve_spec_params",
    "resolve_spec_params_full",
]


@runtime_checkable
class CheckpointProvider(Protocol):
    """Gives checkpoint locations for spec_params functions.

    ``kind`` is one of ``parent_model``, ``parent_model_folder``,
    ``resume_model``, ``ptm``.  Return ``None`` when there is none.
    """

    def resolve(self, kind: str) -> str | None:  # pragma: no cover - protocol
        ...


@attrs.frozen
class SpecParamContext:
    """Per-job facts the spec_params functions read."""

    action: str = ""
    job_id: str | None = None
    output_dir: str | None = None
    ptm: str | None = None
    parent_checkpoint: str | None = None
    parent_folder: str | None = None
    resume_checkpoint: str | None = None
    encryption_key_env: str | None = None
    checkpoint_resolver: CheckpointProvider | None = None


@attrs.frozen
class SpecParamResolution:
    """``values`` to assign; ``missing`` mandatory keys; ``notes``."""

    values: dict[str, Any] = attrs.field(factory=dict)
    missing: list[str] = attrs.field(factory=list)
    notes: list[str] = attrs.field(factory=list)


_OUTPUT_FILES = {
    "create_onnx_file": "model.onnx",
    "create_engine_file": "model.engine",
    "create_cal_cache": "cal.bin",
    "create_pth_file": "model.pth",
}
_REID_PLOTS = {"cmc_plot": "cmc_curve.png", "matches_plot": "sampled_matches.png"}
_CHECKPOINT_FUNCS = ("output_dir", "parent_model", "parent_model_folder", "resume_model", "ptm",
                     "ptm_if_no_resume_model", "parent_model_or_ptm", "key")
KNOWN_FUNCTIONS = frozenset(_CHECKPOINT_FUNCS) | frozenset(_OUTPUT_FILES)
_INFER_RE = re.compile(r"create_inference_result_file_(\w+)\Z")
_REID_RE = re.compile(r"create_evaluate_(\w+)_reid\Z")
_FAMILY_RE = re.compile(r"(create_|parent_model|ptm|resume_model)\w*\Z")
_SKIP = object()


def is_function_name(value: Any) -> bool:
    """True for a known function name or pattern."""
    return isinstance(value, str) and (
        value in KNOWN_FUNCTIONS or bool(_INFER_RE.match(value)) or bool(_REID_RE.match(value)))


def _ckpt(ctx: SpecParamContext, explicit: str | None, kind: str) -> str | None:
    if explicit:
        return explicit
    if ctx.checkpoint_resolver is not None:
        got = ctx.checkpoint_resolver.resolve(kind)
        return got or None
    return None


def _out(ctx: SpecParamContext, key: str, name: str, res: SpecParamResolution) -> Any:
    if not ctx.output_dir:
        res.missing.append(key)
        res.notes.append(f"spec param '{key}': needs an output_dir in the context")
        return _SKIP
    return join_uri(ctx.output_dir, name)


def _call(func: str, key: str, ctx: SpecParamContext, res: SpecParamResolution) -> Any:
    if func == "output_dir":
        if not ctx.output_dir:
            res.missing.append(key)
            res.notes.append(f"spec param '{key}': output_dir not given in the context")
            return _SKIP
        return ctx.output_dir
    if func in ("parent_model", "parent_model_folder"):
        explicit = ctx.parent_checkpoint if func == "parent_model" else ctx.parent_folder
        got = _ckpt(ctx, explicit, func)
        if got is None:
            res.missing.append(key)
            res.notes.append(f"spec param '{key}': no {func} (give a parent checkpoint or a "
                             f"checkpoint resolver, or override '{key}')")
            return _SKIP
        return got
    if func == "resume_model":
        got = _ckpt(ctx, ctx.resume_checkpoint, "resume_model")
        if got is None:
            res.notes.append(f"spec param '{key}': not resuming; template value kept")
            return _SKIP
        return got
    if func == "ptm":
        got = _ckpt(ctx, ctx.ptm, "ptm")
        if got is None:
            res.notes.append(f"spec param '{key}': no pretrained model given; template value kept")
            return _SKIP
        return got
    if func == "ptm_if_no_resume_model":
        if _ckpt(ctx, ctx.resume_checkpoint, "resume_model") is not None:
            res.notes.append(f"spec param '{key}': resuming, so no pretrained model is set")
            return _SKIP
        return _call("ptm", key, ctx, res)
    if func == "parent_model_or_ptm":
        got = _ckpt(ctx, ctx.parent_checkpoint, "parent_model")
        return got if got is not None else _call("ptm", key, ctx, res)
    if func == "key":
        if ctx.encryption_key_env:
            res.notes.append(f"spec param '{key}': reference to env var "
                             f"{ctx.encryption_key_env} (the platform must pass it to the job)")
            return "${oc.env:" + ctx.encryption_key_env + "}"
        res.notes.append(f"spec param '{key}': no encryption_key_env; template value kept")
        return _SKIP
    if func in _OUTPUT_FILES:
        return _out(ctx, key, _OUTPUT_FILES[func], res)
    if _INFER_RE.match(func):
        return _out(ctx, key, "inference_results.json", res)
    m = _REID_RE.match(func)
    if m:
        return _out(ctx, key, _REID_PLOTS.get(m.group(1), f"{m.group(1)}.png"), res)
    raise SpecError("unknown spec_params function", key=key, value=func,
                    expected="one of " + ", ".join(sorted(KNOWN_FUNCTIONS))
                    + ", create_inference_result_file_<x>, create_evaluate_<x>_reid")


def resolve_spec_params_full(params: Mapping[str, Any] | None,
                             ctx: SpecParamContext) -> SpecParamResolution:
    """Resolve every entry; returns values, missing mandatory keys and notes."""
    res = SpecParamResolution()
    for raw_key, spec in (params or {}).items():
        key = format_path(parse_path(raw_key))
        if isinstance(spec, str) and (is_function_name(spec) or _FAMILY_RE.match(spec)):
            value = _call(spec, key, ctx, res)
            if value is not _SKIP:
                res.values[key] = value
        else:
            res.values[key] = spec
    return res


def resolve_spec_params(params: Mapping[str, Any] | None, ctx: SpecParamContext, *,
                        notes: list[str] | None = None,
                        missing: list[str] | None = None) -> dict[str, Any]:
    """Contract form: ``{dotted key: value}``; pass lists to collect notes/missing."""
    res = resolve_spec_params_full(params, ctx)
    if notes is not None:
        notes.extend(res.notes)
    if missing is not None:
        missing.extend(res.missing)
    return res.values
