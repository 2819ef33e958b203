"""Compatibility with NVIDIA's ``nvidia-tao-automl`` 7.2 scripts.

Every ``automl_settings`` key that package accepts (its
``KNOWN_AUTOML_SETTINGS`` plus its sample-count spellings) is either

* an alias of one of our settings (:data:`PEER_ALIASES`, merged into
  ``tao_automl.config.settings.SETTINGS_ALIASES``),
* translated here with the same meaning (:func:`translate_settings`), or
* refused with a :class:`~tao_automl.errors.SettingsError` naming the
  algorithm or feature that is not available yet (:data:`NOT_AVAILABLE`) --
  never silently ignored.

``docs/compatibility.md`` has the table with the differences on purpose.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tao_automl.errors import SettingsError, describe

__all__ = ["PEER_ALIASES", "NOT_AVAILABLE", "OUR_BEHAVIOUR", "PEER_KEYS", "translate_settings",
           "range_overrides"]

#: nvidia-tao-automl spelling -> our settings field (same meaning).
PEER_ALIASES: dict[str, str] = {
    "automl_max_concurrent": "max_concurrent",
    "automl_population_size": "population_size",
    "automl_eval_interval": "perturbation_interval",
    "automl_perturbation_factor": "perturbation_factor",
    "automl_max_trials": "max_recommendations",
    "automl_kde_samples": "kde_samples",
    "automl_top_n_percent": "top_n_percent",
    "automl_min_points_in_model": "min_points_in_model",
    "api_key": "llm_api_key",  # algorithm 'llm' (base_url: an alias in settings.py)
    "model": "llm_model",
    "automl_mutation_factor": "mutation_factor",  # dehb's differential evolution
    "automl_crossover_prob": "crossover_prob",
    "run_baseline": "baseline",
    "run_final_evaluation": "final_eval",
    "experiment_id": "session_id",
    # sample-count spellings of its effective-batch safety check
    **{k: "train_sample_count" for k in (
        "training_sample_count", "num_train_samples", "train_samples", "dataset_sample_count",
        "dataset_size", "samples_per_epoch", "custom.train_dataset.sample_count",
        "custom.train_dataset.num_samples", "custom.train_dataset.size",
        "dataset.train_sample_count", "dataset.num_train_samples", "data.train_sample_count",
        "train.num_samples")},
}

_LLM = ("LLM range narrowing, text evolution and experiment caps are not available yet "
        "(the LLM-guided algorithms llm, hybrid and autoresearch are)")
#: keys whose feature is not implemented yet -> what is missing.
NOT_AVAILABLE: dict[str, str] = {
    **{k: _LLM for k in (
        "llm_analysis_interval", "enable_llm_range_narrowing",
        "hybrid_enable_llm_range_narrowing", "evolvable_text_parameters",
        "automl_max_experiments")},
    "automl_early_stop_threshold": "algorithm 'hyperband_es' is not available yet "
                                   "(use 'hyperband' or 'asha')",
    "automl_min_early_stop_epochs": "algorithm 'hyperband_es' is not available yet "
                                    "(use 'hyperband' or 'asha' with min_epochs)",
    "automl_min_top_configs": "ASHA's 'stop once N configurations reached the top rung' rule is not "
                              "available yet (asha runs max_recommendations configurations)",
    "automl_checkpoint_retention_strategy": "checkpoint retention inside a trial is not available "
                                            "yet (every checkpoint a job writes is kept)",
}

#: keys that only restate what this runner always does: value accepted -> why.
OUR_BEHAVIOUR: dict[str, tuple[Any, str]] = {
    "automl_delete_intermediate_ckpt": (False, "deleting trial artifacts is not available yet: "
                                               "every trial's artifacts are kept"),
    "automl_retain_failed_artifacts": (True, "deleting trial artifacts is not available yet: "
                                             "failed trials' artifacts are kept"),
}

#: Translated here (automl_max_generations: translate_settings; automl_range_override:
#: range_overrides) or already aliases in tao_automl.config.settings (epoch_multiplier: an error there).
_TRANSLATED = ("automl_max_generations", "automl_range_override", "automl_max_epochs",
               "automl_max_recommendations", "automl_reduction_factor", "epoch_multiplier",
               *("include_latency", "latency_direction", "latency_metric", "latency_objective",
                 "latency_scale", "latency_weight", "metric_scale", "metric_weight", "multi_objective",
                 "objectives"))

#: nvidia-tao-automl's latency switches: any of them true adds the latency objective.
LATENCY_SWITCHES = ("multi_objective", "latency_objective", "include_latency")
_LATENCY_KEYS = ("latency_metric", "latency_direction", "latency_weight", "latency_scale")

#: Every key nvidia-tao-automl 7.2.0 accepts in automl_settings (75 spellings).
PEER_KEYS: tuple[str, ...] = tuple(sorted({
    *PEER_ALIASES, *NOT_AVAILABLE, *OUR_BEHAVIOUR, *_TRANSLATED,
    "algorithm", "allow_unsafe_effective_batch", "baseline_metric", "baseline_record_path",
    "direction", "evaluation_records_dir", "final_evaluation", "final_evaluation_metric",
    "final_evaluation_record_path", "metric", "reuse_best_metric_for_final_evaluation",
    "session_id", "train_sample_count",
    "base_url", "llm_api_key", "llm_endpoint", "llm_max_tokens", "llm_model", "llm_temperature",
    "research_program",
}))


def _secretish(key: str) -> bool:
    return "key" in key or "token" in key


def translate_settings(raw: Mapping[str, Any]) -> dict[str, Any]:
    """Apply the non-alias translations to a raw ``automl_settings`` mapping.

    Raises SettingsError for keys whose feature is not available yet and for
    restating keys given a value this runner cannot honour.
    ``automl_max_generations`` (PBT generations of ``automl_eval_interval``
    epochs) becomes ``max_epochs``.
    """
    out = dict(raw)
    for key, value in raw.items():
        if key in NOT_AVAILABLE:
            shown = "<not shown>" if _secretish(key) else value
            raise SettingsError.from_message(
                describe("setting of nvidia-tao-automl not available yet", key=f"automl_settings.{key}",
                         value=shown, expected="leave it out", hint=NOT_AVAILABLE[key]),
                key=key)
        if key in OUR_BEHAVIOUR:
            ok, why = OUR_BEHAVIOUR[key]
            if value is not ok:
                raise SettingsError.from_message(
                    describe("setting of nvidia-tao-automl not available yet",
                             key=f"automl_settings.{key}", value=value,
                             expected=f"{ok!r} or leave it out", hint=why), key=key, value=value)
            del out[key]
    if "automl_max_generations" in out:
        gens = out.pop("automl_max_generations")
        if not isinstance(gens, int) or isinstance(gens, bool) or gens < 2:
            raise SettingsError.from_message(describe("invalid setting", key="automl_settings.automl_max_generations",
                                         value=gens, expected="an integer >= 2 (PBT generations)"),
                                key="automl_max_generations", value=gens)
        interval = out.get("automl_eval_interval", out.get("perturbation_interval", 10))
        if not isinstance(interval, int) or isinstance(interval, bool) or interval <= 0:
            interval = 10
        epochs = gens * interval
        for k in ("max_epochs", "automl_max_epochs"):
            if k in out and out[k] != epochs:
                raise SettingsError.from_message(describe(
                    "conflicting settings", key="automl_settings.automl_max_generations", value=gens,
                    expected=f"max_epochs = generations x interval ({epochs}), or only one of "
                             f"automl_max_generations and {k} ({out[k]!r})"), key="automl_max_generations")
        out["max_epochs"] = epochs
        if "automl_eval_interval" not in out and "perturbation_interval" not in out:
            out["perturbation_interval"] = interval
    _objectives(raw, out)
    payload = out.get("final_evaluation")
    if payload is not None and not isinstance(payload, Mapping):
        raise SettingsError.from_message(describe("invalid setting", key="automl_settings.final_evaluation",
                                     value=payload, expected="a mapping with metric_value (and status, "
                                     "source...): a final evaluation measured elsewhere"),
                            key="final_evaluation", value=payload)
    return out


def range_overrides(value: Any) -> dict[str, dict[str, Any]]:
    """``automl_range_override`` (a list of ``{"parameter": name, "valid_min":...,
    "valid_max":..., "valid_options":..., "math_cond":...}``) as
    ``custom_param_ranges``."""
    if not isinstance(value, list):
        raise SettingsError.from_message(describe("invalid setting", key="automl_settings.automl_range_override",
                                     value=value, expected="a list of {parameter, valid_min, valid_max...}"),
                            key="automl_range_override", value=value)
    out: dict[str, dict[str, Any]] = {}
    for i, item in enumerate(value):
        if not isinstance(item, Mapping) or not isinstance(item.get("parameter"), str):
            raise SettingsError.from_message(describe(
                "invalid setting", key=f"automl_settings.automl_range_override[{i}]", value=item,
                expected="a mapping with 'parameter' (a dotted spec key) and valid_min/valid_max/"
                         "valid_options/math_cond"), key="automl_range_override", value=item)
        out[item["parameter"]] = {k: v for k, v in item.items() if k != "parameter"}
    return out


def _objectives(raw: Mapping[str, Any], out: dict[str, Any]) -> None:
    """nvidia-tao-automl's objective keys -> ``objectives`` (its parse_objective_config):
    ``metric_weight``/``metric_scale`` weigh the run's metric; a true
    ``multi_objective``/``latency_objective``/``include_latency`` appends
    ``latency_metric`` (default ``latency``, minimized) with ``latency_weight``
    and ``latency_scale``."""
    for k in ("metric_weight", "metric_scale", *LATENCY_SWITCHES, *_LATENCY_KEYS):
        out.pop(k, None)
    for k in LATENCY_SWITCHES:
        if k in raw and not isinstance(raw[k], bool):
            raise SettingsError.from_message(describe("invalid setting", key=f"automl_settings.{k}", value=raw[k],
                                         expected="true or false"), key=k, value=raw[k])
    latency = any(raw.get(k) for k in LATENCY_SWITCHES)
    idle = [k for k in _LATENCY_KEYS if k in raw]
    if idle and not latency:
        raise SettingsError.from_message(describe(
            "setting without effect", key=f"automl_settings.{idle[0]}", value=raw[idle[0]],
            expected="also include_latency: true (or multi_objective / latency_objective), or leave it out",
            hint="the latency objective is added only when one of those switches is true"), key=idle[0])
    weighted = [k for k in ("metric_weight", "metric_scale") if k in raw]
    if "objectives" in raw and (weighted or latency):
        k = (weighted or [next(k for k in LATENCY_SWITCHES if raw.get(k))])[0]
        raise SettingsError.from_message(describe(
            "conflicting settings", key=f"automl_settings.{k}", value=raw[k],
            expected="either 'objectives' or the metric_weight/metric_scale/latency keys, not both"), key=k)
    if not (weighted or latency):
        return
    first: dict[str, Any] = {"weight": raw.get("metric_weight", 1.0), "scale": raw.get("metric_scale", 1.0)}
    if raw.get("metric") is not None:
        first["metric"] = raw["metric"]
    if raw.get("direction") is not None:
        first["direction"] = raw["direction"]
    objs: list[dict[str, Any]] = [first]
    lat = raw.get("latency_metric", "latency")
    if latency and lat != first.get("metric"):
        objs.append({"metric": lat, "direction": raw.get("latency_direction", "minimize"),
                     "weight": raw.get("latency_weight", 1.0), "scale": raw.get("latency_scale", 1.0)})
    out["objectives"] = objs
