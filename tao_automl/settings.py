"""``automl_settings``: one attrs class, structured by cattrs, with clear errors.

Unknown keys are an error with a "did you mean"; wrong types name the key,
the value and the expected type.  Aliases used by NVIDIA's nvidia-tao-automl
scripts (``num_recommendations``, ``automl_max_recommendations``,
``automl_algorithm``...) are accepted and mapped to one canonical field.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any

import attrs
import cattrs

from tao_automl.errors import SettingsError, describe

__all__ = ["AutoMLSettings", "WandbSettings", "parse_settings", "SETTINGS_ALIASES"]

DIRECTIONS = {"minimize": "minimize", "min": "minimize", "maximize": "maximize", "max": "maximize"}


def _positive(inst: Any, att: attrs.Attribute, value: Any) -> None:
    if value is not None and value <= 0:
        raise SettingsError(
            describe("invalid setting", key=att.name, value=value, expected="a positive number"),
            key=att.name,
            value=value,
        )


def _non_negative(inst: Any, att: attrs.Attribute, value: Any) -> None:
    if value is not None and value < 0:
        raise SettingsError(
            describe("invalid setting", key=att.name, value=value, expected="a number >= 0"),
            key=att.name,
            value=value,
        )


def _direction(inst: Any, att: attrs.Attribute, value: Any) -> None:
    if value is not None and value not in DIRECTIONS:
        raise SettingsError(
            describe(
                "invalid setting", key="direction", value=value, expected="'minimize' or 'maximize'"
            ),
            key="direction",
            value=value,
        )


WANDB_MODES = ("online", "offline", "disabled", "dryrun", "shared")


def _wandb_mode(inst: Any, att: attrs.Attribute, value: Any) -> None:
    if value is not None and value not in WANDB_MODES:
        raise SettingsError(
            describe("invalid setting", key="wandb.mode", value=value, expected="one of " + ", ".join(WANDB_MODES)),
            key="wandb.mode",
            value=value,
        )


@attrs.frozen(kw_only=True)
class WandbSettings:
    """The ``wandb`` block of settings; every field falls back to WandB's env vars."""

    enabled: bool = True
    project: str | None = None
    entity: str | None = None
    group: str | None = None
    tags: list[str] = attrs.field(factory=list)
    mode: str | None = attrs.field(default=None, validator=_wandb_mode)  # None -> WANDB_MODE
    dir: str | None = None


def _session_id(inst: Any, att: attrs.Attribute, value: Any) -> None:
    if value is not None:
        from tao_automl.workspace import check_session_id

        check_session_id(value, key="automl_settings.session_id")


@attrs.frozen(kw_only=True)
class AutoMLSettings:
    """Every knob of one AutoML run.

    Budget:
        max_recommendations: trials for sequential searchers (bayesian, random,
            grid cap). Also the sample count for asha/hyperband/bohb.
        max_epochs: top fidelity for multi-fidelity algorithms (None: the
            template's epoch count).
        min_epochs: lowest rung (grace period) for ASHA/Hyperband.
        reduction_factor: eta for Hyperband/ASHA/BOHB.
        sampler: how asha and hyperband draw configurations: "random"
            (default; plain ASHA/Hyperband) or "bayesian" (the GP sampler of
            the bayesian algorithm, fed every trial's last result).
        population_size, perturbation_interval: PBT.  For dehb,
            population_size is the smallest DE subpopulation per epoch budget.
        mutation_factor, crossover_prob: dehb's differential evolution
            (None: 0.5 each; F in (0, 2], CR in [0, 1]).
        epoch_budget: dehb only: total epochs all jobs may train (None: only
            max_recommendations, which counts jobs, limits the run).
        pbt_fixed: parameters PBT must not mutate, because the weights it
            resumes from depend on them (architecture).  Names or dotted
            prefixes ending in "." (None: ["model."]).  They are still sampled
            per population member and travel with the checkpoint when a member
            copies another.
        max_concurrent: parallel jobs.
    Objective:
        metric, direction: the objective; None -> the skill's declared metric.
    Run:
        seed, session_id, train_sample_count, shard_count, trial_timeout_s,
        max_retries (infrastructure retries per trial), fail_fast_after (stop
        when the first N trials all fail with one shared cause), baseline,
        final_eval, poll_interval_s (longest single wait on a job; exits are
        noticed at once regardless), ray_address, quiet, wandb.
    """

    algorithm: str = "bayesian"
    metric: str | None = None
    direction: str | None = attrs.field(default=None, validator=_direction)
    max_recommendations: int = attrs.field(default=20, validator=_positive)
    max_epochs: int | None = attrs.field(default=None, validator=_positive)
    min_epochs: int = attrs.field(default=1, validator=_positive)
    reduction_factor: int = attrs.field(default=3)
    population_size: int = attrs.field(default=4, validator=_positive)
    perturbation_interval: int = attrs.field(default=2, validator=_positive)
    pbt_fixed: list[str] | None = None
    mutation_factor: float | None = None
    crossover_prob: float | None = None
    epoch_budget: int | None = attrs.field(default=None, validator=_positive)
    sampler: str = "random"
    max_concurrent: int = attrs.field(default=1, validator=_positive)
    seed: int | None = None
    session_id: str | None = attrs.field(default=None, validator=_session_id)
    train_sample_count: int | None = attrs.field(default=None, validator=_positive)
    shard_count: int | None = attrs.field(default=None, validator=_positive)
    trial_timeout_s: float | None = attrs.field(default=None, validator=_positive)
    max_retries: int = attrs.field(default=2, validator=_non_negative)
    fail_fast_after: int = attrs.field(default=3, validator=_non_negative)
    baseline: bool = True
    final_eval: bool = True
    poll_interval_s: float = attrs.field(default=1.0, validator=_positive)
    grid_points: int = attrs.field(default=3, validator=_positive)
    estimate_trial_s: float | None = attrs.field(default=None, validator=_positive)
    checkpoint_selection: str = "best"
    ray_address: str | None = None
    quiet: bool = True
    wandb: WandbSettings | None = None

    def __attrs_post_init__(self) -> None:
        checks = (
            ("reduction_factor", self.reduction_factor >= 2, "an integer >= 2"),
            ("sampler", self.sampler in ("random", "bayesian"),
             "'random' or 'bayesian' (how asha/hyperband draw configurations)"),
            ("checkpoint_selection", self.checkpoint_selection in ("best", "last"), "'best' or 'last'"),
            ("mutation_factor", self.mutation_factor is None or 0.0 < self.mutation_factor <= 2.0,
             "a number in (0, 2] (DE's scale factor F; 0.5 is the usual choice)"),
            ("crossover_prob", self.crossover_prob is None or 0.0 <= self.crossover_prob <= 1.0,
             "a probability in [0, 1]"),
        )
        for key, ok, expected in checks:
            if not ok:
                raise SettingsError(
                    describe("invalid setting", key=key, value=getattr(self, key), expected=expected)
                )

    @property
    def mode(self) -> str | None:
        """Ray Tune's spelling of the direction ('min'/'max')."""
        if self.direction is None:
            return None
        return "min" if DIRECTIONS[self.direction] == "minimize" else "max"

    def to_dict(self) -> dict[str, Any]:
        return _converter.unstructure(self)


# Names from nvidia-tao-automl scripts and common spellings -> canonical field.
SETTINGS_ALIASES = {
    "automl_algorithm": "algorithm",
    "num_recommendations": "max_recommendations",
    "automl_max_recommendations": "max_recommendations",
    "max_recommendations": "max_recommendations",
    "num_trials": "max_recommendations",
    "num_samples": "max_recommendations",
    "max_concurrent_trials": "max_concurrent",
    "automl_max_epochs": "max_epochs",
    "automl_reduction_factor": "reduction_factor",
    "epoch_multiplier": None,  # accepted by the peer; meaningless here -> explicit error below
    "population": "population_size",
    "automl_population_size": "population_size",
    "automl_mutation_factor": "mutation_factor",
    "automl_crossover_prob": "crossover_prob",
    "grace_period": "min_epochs",
    "metric_direction": "direction",
    "mode": "direction",
    "experiment_name": "session_id",
}

_converter = cattrs.Converter(forbid_extra_keys=True)


def _field_names() -> list[str]:
    return [a.name for a in attrs.fields(AutoMLSettings)]


def _did_you_mean(key: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(key, choices, n=1, cutoff=0.6)
    return f"did you mean '{close[0]}'?" if close else "see AutoMLSettings for the accepted keys"


def parse_settings(raw: Mapping[str, Any] | AutoMLSettings | None, **overrides: Any) -> AutoMLSettings:
    """Structure ``automl_settings`` into :class:`AutoMLSettings`.

    ``overrides`` (non-None values only) win over ``raw``; e.g. the
    ``automl_algorithm=`` argument of ``run()``.
    """
    if isinstance(raw, AutoMLSettings):
        data: dict[str, Any] = _converter.unstructure(raw)
    elif raw is None:
        data = {}
    elif isinstance(raw, Mapping):
        data = {}
        fields = _field_names()
        for key, value in raw.items():
            if not isinstance(key, str):
                raise SettingsError(describe("setting keys must be strings", key=key))
            canon = SETTINGS_ALIASES.get(key, key)
            if canon is None:
                raise SettingsError(
                    describe(
                        "unsupported setting",
                        key=f"automl_settings.{key}",
                        value=value,
                        expected="a key this runner understands",
                        hint="epochs are set directly with max_epochs/min_epochs",
                    ),
                    key=key,
                )
            if canon not in fields:
                raise SettingsError(
                    describe(
                        "unknown setting",
                        key=f"automl_settings.{key}",
                        value=value,
                        expected="one of " + ", ".join(sorted(fields)),
                        hint=_did_you_mean(key, fields + list(SETTINGS_ALIASES)),
                    ),
                    key=key,
                    value=value,
                )
            if canon in data and data[canon] != value:
                raise SettingsError(
                    describe(
                        "conflicting settings",
                        key=f"automl_settings.{key}",
                        value=value,
                        expected=f"the same value as '{canon}' ({data[canon]!r}) or only one of them",
                    )
                )
            if canon == "session_id" and value is not None:
                from tao_automl.workspace import check_session_id

                check_session_id(value, key=f"automl_settings.{key}")  # the key as the user wrote it
            _check_de_range(canon, key, value)  # dehb's DE knobs: named as the user wrote them
            data[canon] = value
    else:
        raise SettingsError(
            describe("automl_settings must be a mapping", value=type(raw).__name__, expected="a dict")
        )
    for key, value in overrides.items():
        if value is not None:
            data[key] = value
    if "direction" in data and isinstance(data["direction"], str):
        data["direction"] = DIRECTIONS.get(data["direction"].lower(), data["direction"])
    if isinstance(data.get("wandb"), bool):
        data["wandb"] = {"enabled": data["wandb"]}
    if data.get("wandb") is not None and not isinstance(data["wandb"], Mapping | WandbSettings):
        raise SettingsError(
            describe("invalid setting", key="wandb", value=data["wandb"],
                     expected="true/false or a mapping (project, entity, group, tags, mode, dir)"),
            key="wandb", value=data["wandb"])
    _check_types(data)
    if isinstance(data.get("wandb"), Mapping):
        _check_types(data["wandb"], WandbSettings, prefix="wandb.")
    try:
        return _converter.structure(data, AutoMLSettings)
    except SettingsError:
        raise
    except cattrs.errors.ClassValidationError as exc:
        inner = _find_settings_error(exc)
        if inner is not None:
            raise inner from None
        raise SettingsError(_explain_cattrs(exc, data)) from None
    except (TypeError, ValueError) as exc:
        raise SettingsError(describe("invalid automl_settings", value=str(exc))) from None


_DE_RANGES = {
    "mutation_factor": (lambda v: 0.0 < v <= 2.0, "a number in (0, 2] (DE's scale factor F; 0.5 is the usual choice)"),
    "crossover_prob": (lambda v: 0.0 <= v <= 1.0, "a probability in [0, 1]"),
}


def _check_de_range(canon: str, key: str, value: Any) -> None:
    rule = _DE_RANGES.get(canon)
    if rule is None or value is None:
        return
    ok = isinstance(value, int | float) and not isinstance(value, bool) and rule[0](value)
    if not ok:
        raise SettingsError(describe("invalid setting", key=f"automl_settings.{key}", value=value,
                                     expected=rule[1]), key=key, value=value)


def _check_types(data: Mapping[str, Any], cls: type | None = None, prefix: str = "") -> None:
    """Strict scalar type checks (cattrs would coerce "3" -> 3 and 3.7 -> 3)."""
    for att in attrs.fields(cls or AutoMLSettings):
        if att.name not in data or data[att.name] is None:
            continue
        value = data[att.name]
        typ = _type_name(att.type)
        expected: tuple[type, ...] | None = None
        label = ""
        if typ.startswith("int"):
            expected, label = (int,), "an integer"
        elif typ.startswith("float"):
            expected, label = (int, float), "a number"
        elif typ.startswith("bool"):
            expected, label = (bool,), "true or false"
        elif typ.startswith("str"):
            expected, label = (str,), "a string"
        elif typ.startswith("list"):
            expected, label = (list, tuple), "a list"
        if expected is None:
            continue
        ok = isinstance(value, expected) and not (bool not in expected and isinstance(value, bool))
        if not ok:
            raise SettingsError(
                describe(
                    "wrong type in automl_settings",
                    key=prefix + att.name,
                    value=value,
                    expected=label,
                ),
                key=prefix + att.name,
                value=value,
            )


def _type_name(tp: Any) -> str:
    """'int', 'float | None'... for a string annotation or a resolved type
    (cattrs resolves the class's string annotations in place on first use)."""
    if isinstance(tp, str):
        return tp
    if isinstance(tp, type):
        return tp.__name__
    import typing

    if typing.get_origin(tp) in (list, dict, tuple, set):
        return typing.get_origin(tp).__name__
    args = [a for a in typing.get_args(tp) if a is not type(None)]
    if len(args) == 1:
        return _type_name(args[0]) + " | None"
    return str(tp).replace("typing.", "")


def _find_settings_error(exc: BaseException) -> SettingsError | None:
    if isinstance(exc, SettingsError):
        return exc
    for sub in getattr(exc, "exceptions", ()):
        found = _find_settings_error(sub)
        if found is not None:
            return found
    return None


def _explain_cattrs(exc: BaseException, data: Mapping[str, Any]) -> str:
    notes = cattrs.transform_error(exc, path="automl_settings")
    return "invalid automl_settings: " + "; ".join(notes)
