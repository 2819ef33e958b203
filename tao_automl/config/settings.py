"""``automl_settings``: one attrs class, structured by cattrs, with clear errors.

Unknown keys are an error with a "did you mean"; wrong types name the key,
the value and the expected type.  Aliases used by NVIDIA's nvidia-tao-automl
scripts (``num_recommendations``, ``automl_max_recommendations``,
``automl_algorithm``...) are accepted and mapped to one canonical field.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Mapping
from typing import Any

import attrs
import cattrs

from tao_automl.config.compat import PEER_ALIASES, translate_settings
from tao_automl.config.convert import converter
from tao_automl.config.objectives import check_objectives
from tao_automl.config.secrets import _REFERENCE, SecretRef
from tao_automl.config.session_id import check_session_id
from tao_automl.errors import AutoMLError, SettingsError, describe

__all__ = ["AutoMLSettings", "WandbSettings", "parse_settings", "SETTINGS_ALIASES", "RANGES",
           "written_keys", "name_as_written"]

DIRECTIONS = {"minimize": "minimize", "min": "minimize", "maximize": "maximize", "max": "maximize"}


#: Accepted range of every numeric setting: (low, high, low_exclusive).  Values
#: outside, NaN and infinities are refused (they hang review or give
#: nonsense estimates: PBT population_size=10**9, reduction_factor=10**9...).
DAY_S = 86400.0
RANGES: dict[str, tuple[float, float, bool]] = {
    "max_recommendations": (1, 100_000, False),
    "max_epochs": (1, 100_000, False),
    "min_epochs": (1, 100_000, False),
    "reduction_factor": (2, 100, False),
    "population_size": (1, 1_000, False),
    "perturbation_interval": (1, 100_000, False),
    "max_concurrent": (1, 1_024, False),
    "seed": (0, 2**32 - 1, False),
    "train_sample_count": (1, 10**12, False),
    "shard_count": (1, 100_000, False),
    "trial_timeout_s": (0, 365 * DAY_S, True),
    "max_retries": (0, 100, False),
    "fail_fast_after": (0, 100_000, False),
    "poll_interval_s": (0, 3600, True),
    "grid_points": (1, 1_000, False),
    "estimate_trial_s": (0, 365 * DAY_S, True),
    "perturbation_factor": (1, 100, True),
    "kde_samples": (1, 100_000, False),
    "top_n_percent": (0, 100, True),
    "min_points_in_model": (1, 100_000, False),
    "mutation_factor": (0, 2, True),
    "crossover_prob": (0, 1, False),
    "epoch_budget": (1, 10**9, False),
    # LLM-guided search (algorithm 'llm'; tao_automl.algorithms.llm)
    "llm_temperature": (0, 2, False),
    "llm_max_tokens": (1, 1_000_000, False),
    "llm_timeout_s": (0, 3600, True),
    "llm_max_retries": (0, 20, False),
    "llm_prompt_max_chars": (2_000, 10_000_000, False),
    "autoresearch_noise_margin": (0, 1e12, False),
    "autoresearch_repeats": (1, 100, False),
}
#: Closed ranges of real numbers (range_text says "a number from ... to ..."; other
#: closed ranges are integers).
REAL_RANGES = {"llm_temperature", "crossover_prob", "autoresearch_noise_margin"}


def range_text(key: str) -> str:
    """The accepted range of ``key`` in words (used in messages and the README)."""
    lo, hi, open_lo = RANGES[key]
    if key in REAL_RANGES:
        return f"a number from {lo:g} to {hi:g}"
    if open_lo:
        return f"a finite number > {lo:g} and <= {int(hi)}"
    return f"an integer from {int(lo)} to {int(hi)}"


def _finite(inst: Any, att: attrs.Attribute, value: Any) -> None:
    """A metric value given as a setting: any finite number (no range applies)."""
    if isinstance(value, float) and not math.isfinite(value):
        raise SettingsError("invalid setting", key=att.name, value=value, expected="a finite number")


#: Settings that are measured values, not knobs: finite, with no range.
MEASURED = ("baseline_metric", "final_evaluation_metric")


def _in_range(inst: Any, att: attrs.Attribute, value: Any) -> None:
    _check_range(att.name, value)


def _check_range(key: str, value: Any) -> None:
    if value is None or isinstance(value, bool) or not isinstance(value, int | float):
        return  # types are checked by _check_types
    lo, hi, open_lo = RANGES[key]
    finite = isinstance(value, int) or math.isfinite(value)  # huge ints compare exactly
    ok = finite and (value > lo if open_lo else value >= lo) and value <= hi
    if not ok:
        raise SettingsError("invalid setting", key=key, value=value, expected=range_text(key))



def _direction(inst: Any, att: attrs.Attribute, value: Any) -> None:
    if value is not None and value not in DIRECTIONS:
        raise SettingsError("invalid setting", key="direction", value=value,
                            expected="'minimize' or 'maximize'")


WANDB_MODES = ("online", "offline", "disabled", "dryrun", "shared")


def _objectives(inst: Any, att: attrs.Attribute, value: Any) -> None:
    if value is not None:
        check_objectives(value)


def _baseline_mode(inst: Any, att: attrs.Attribute, value: Any) -> None:
    if value is True or value is False or value == "defaults":
        return
    raise SettingsError("invalid setting", key="baseline", value=value,
                        expected="true (evaluate the starting checkpoint), false (no baseline) or "
                                 "'defaults' (one training run with the schema's default values)")


def _wandb_mode(inst: Any, att: attrs.Attribute, value: Any) -> None:
    if value is not None and value not in WANDB_MODES:
        raise SettingsError("invalid setting", key="wandb.mode", value=value,
                            expected="one of " + ", ".join(WANDB_MODES))


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
        dehb_strategy: dehb's mutation, by the DEHB authors' names:
            "currenttobest1_bin" (None: the default, measured best) or
            "rand1_bin" (the paper's).
        dehb_promotion: how dehb fills a bracket's higher rungs: "rank"
            (None: the default; the lower rung's best run as they are, as
            successive halving does) or "evolve" (the paper: after the first
            Hyperband iteration they are DE mutants of the lower rung's best).
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
        objectives: several objectives (names or {metric, direction, weight,
            scale}): multi-objective search (tao_automl.config.objectives).
        select_best: {"maximize"|"minimize": metric, "subject_to": [...]}:
            picks ``best`` among the objectives instead of the weighted score.
    Run:
        seed, session_id, train_sample_count, shard_count, trial_timeout_s,
        max_retries (infrastructure retries per trial), fail_fast_after (stop
        when the first N trials all fail with one shared cause), baseline
        (True: evaluate the starting checkpoint; "defaults": one training run
        with the schema's default values, for models trained from scratch),
        final_eval, poll_interval_s (longest single wait on a job; exits are
        noticed at once regardless), ray_address, quiet, wandb, early_start
        (True: the driver submits the first batch's jobs while Ray starts and
        the trials adopt them; bayesian, random, grid, asha; local workspaces).
    LLM-guided search (algorithms 'llm' and 'hybrid'; an error with any other):
        llm_endpoint (alias base_url; an OpenAI-compatible base URL),
        llm_model, llm_api_key (only secret("ENV"); a literal key is refused),
        llm_temperature, llm_max_tokens, llm_timeout_s, llm_max_retries,
        llm_fallback (llm only; None: stop with LLMError; "random": draw, tag and count),
        llm_prompt_max_chars (older trials are summarised beyond it);
        autoresearch only: research_program (the goal, in the prompt),
        autoresearch_noise_margin (absolute; 0: measured), autoresearch_repeats
        (re-runs of the incumbent that measure it; counted in the budget).

    Every numeric setting has a finite range (:data:`RANGES`): budgets and
    epochs 1..100000, max_concurrent 1..1024, population_size 1..1000,
    reduction_factor 2..100, seed 0..2**32-1, max_retries 0..100, times in
    seconds > 0 and <= one year (poll_interval_s <= 3600).  NaN, infinities
    and values outside are a SettingsError naming the key, value and range.
    """

    algorithm: str = "bayesian"
    metric: str | None = None
    direction: str | None = attrs.field(default=None, validator=_direction)
    objectives: list[Any] | None = attrs.field(default=None, validator=_objectives)
    select_best: dict[str, Any] | None = None
    max_recommendations: int = attrs.field(default=20, validator=_in_range)
    max_epochs: int | None = attrs.field(default=None, validator=_in_range)
    min_epochs: int = attrs.field(default=1, validator=_in_range)
    reduction_factor: int = attrs.field(default=3, validator=_in_range)
    population_size: int = attrs.field(default=4, validator=_in_range)
    perturbation_interval: int = attrs.field(default=2, validator=_in_range)
    pbt_fixed: list[str] | None = None
    mutation_factor: float | None = attrs.field(default=None, validator=_in_range)
    crossover_prob: float | None = attrs.field(default=None, validator=_in_range)
    epoch_budget: int | None = attrs.field(default=None, validator=_in_range)
    dehb_strategy: str | None = None
    dehb_promotion: str | None = None
    sampler: str = "random"
    max_concurrent: int = attrs.field(default=1, validator=_in_range)
    seed: int | None = attrs.field(default=None, validator=_in_range)
    session_id: str | None = attrs.field(default=None, validator=_session_id)
    train_sample_count: int | None = attrs.field(default=None, validator=_in_range)
    shard_count: int | None = attrs.field(default=None, validator=_in_range)
    trial_timeout_s: float | None = attrs.field(default=None, validator=_in_range)
    max_retries: int = attrs.field(default=2, validator=_in_range)
    fail_fast_after: int = attrs.field(default=3, validator=_in_range)
    baseline: bool | str = attrs.field(default=True, validator=_baseline_mode)
    final_eval: bool = True
    poll_interval_s: float = attrs.field(default=1.0, validator=_in_range)
    grid_points: int = attrs.field(default=3, validator=_in_range)
    estimate_trial_s: float | None = attrs.field(default=None, validator=_in_range)
    checkpoint_selection: str = "best"
    ray_address: str | None = None
    quiet: bool = True
    early_start: bool = True
    wandb: WandbSettings | None = None
    # nvidia-tao-automl knobs (docs/compatibility.md): PBT multiplies or divides a
    # numeric value by perturbation_factor; BOHB's KDE model (hpbandster names).
    perturbation_factor: float | None = attrs.field(default=None, validator=_in_range)
    kde_samples: int | None = attrs.field(default=None, validator=_in_range)
    top_n_percent: float | None = attrs.field(default=None, validator=_in_range)
    min_points_in_model: int | None = attrs.field(default=None, validator=_in_range)
    allow_unsafe_effective_batch: bool = False  # no batch-vs-train_sample_count check or cap
    # evaluations measured elsewhere, and where the evaluation records are also written
    baseline_metric: float | None = attrs.field(default=None, validator=_finite)
    final_evaluation_metric: float | None = attrs.field(default=None, validator=_finite)
    final_evaluation: dict[str, Any] | None = None
    reuse_best_metric_for_final_evaluation: bool = False
    baseline_record_path: str | None = None
    final_evaluation_record_path: str | None = None
    evaluation_records_dir: str | None = None
    # LLM-guided search (algorithm 'llm'): an OpenAI-compatible chat-completions server.
    llm_endpoint: str | None = None
    llm_model: str | None = None
    llm_api_key: SecretRef | None = None
    llm_temperature: float = attrs.field(default=0.2, validator=_in_range)
    llm_max_tokens: int = attrs.field(default=1024, validator=_in_range)
    llm_timeout_s: float = attrs.field(default=60.0, validator=_in_range)
    llm_max_retries: int = attrs.field(default=3, validator=_in_range)
    llm_fallback: str | None = None
    llm_prompt_max_chars: int = attrs.field(default=60_000, validator=_in_range)
    # autoresearch (keep/discard loop): the research goal, the noise margin (0: measured
    # by re-running the incumbent autoresearch_repeats times, default 2)
    research_program: str | None = None
    autoresearch_noise_margin: float = attrs.field(default=0.0, validator=_in_range)
    autoresearch_repeats: int | None = attrs.field(default=None, validator=_in_range)

    def __attrs_post_init__(self) -> None:
        checks = (
            ("sampler", self.sampler in ("random", "bayesian"),
             "'random' or 'bayesian' (how asha/hyperband draw configurations)"),
            ("checkpoint_selection", self.checkpoint_selection in ("best", "last"), "'best' or 'last'"),
            ("mutation_factor", self.mutation_factor is None or 0.0 < self.mutation_factor <= 2.0,
             "a number in (0, 2] (DE's scale factor F; 0.5 is the usual choice)"),
            ("crossover_prob", self.crossover_prob is None or 0.0 <= self.crossover_prob <= 1.0,
             "a probability in [0, 1]"),
            ("dehb_strategy", self.dehb_strategy in (None, *DEHB_STRATEGIES),
             "'currenttobest1_bin' (the default) or 'rand1_bin' (DE mutation, the DEHB authors' names)"),
            ("dehb_promotion", self.dehb_promotion in (None, *DEHB_PROMOTIONS),
             "'rank' (the default: a bracket's best run at the next budget as they are) or 'evolve' "
             "(the paper: DE mutants of them)"),
            ("llm_fallback", self.llm_fallback in (None, "random"),
             "null (no fallback: the run stops with LLMError) or 'random'"),
            ("llm_endpoint", self.llm_endpoint is None or bool(_URL.match(self.llm_endpoint)),
             "an http:// or https:// base URL of an OpenAI-compatible server (e.g. http://localhost:8000/v1)"),
            ("llm_model", self.llm_model is None or bool(self.llm_model.strip()), "a non-empty model name"),
        )
        for key, ok, expected in checks:
            if not ok:
                raise SettingsError("invalid setting", key=key, value=getattr(self, key), expected=expected)

    @property
    def mode(self) -> str | None:
        """Ray Tune's spelling of the direction ('min'/'max')."""
        if self.direction is None:
            return None
        return "min" if DIRECTIONS[self.direction] == "minimize" else "max"

    def to_dict(self) -> dict[str, Any]:
        return converter.unstructure(self)


#: dehb_strategy values (the DEHB authors' names; the first is the default) and dehb_promotion values
DEHB_STRATEGIES = ("currenttobest1_bin", "rand1_bin")
DEHB_PROMOTIONS = ("rank", "evolve")

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
    "base_url": "llm_endpoint",
}
SETTINGS_ALIASES.update(PEER_ALIASES)

#: Settings only LLM-guided algorithms read (an error with any other algorithm).
LLM_SETTINGS = ("llm_endpoint", "llm_model", "llm_api_key", "llm_temperature", "llm_max_tokens",
                "llm_timeout_s", "llm_max_retries", "llm_fallback", "llm_prompt_max_chars")
#: Settings only ``autoresearch`` reads (an error with any other algorithm, LLM-guided or not).
AUTORESEARCH_SETTINGS = ("research_program", "autoresearch_noise_margin", "autoresearch_repeats")
_URL = re.compile(r"https?://[^\s/]+", re.IGNORECASE)

# baseline: True | False | "defaults" -- passed through as given, checked by _baseline_mode
converter.register_structure_hook(bool | str, lambda v, _t: v)
# An API key is only ever a reference: settings.json holds ${oc.env:NAME}, never a value.
converter.register_unstructure_hook(SecretRef, lambda ref: ref.reference())
converter.register_structure_hook(SecretRef, lambda v, _t: v if isinstance(v, SecretRef) else api_key_ref(v))


def api_key_ref(value: Any, key: str = "llm_api_key") -> SecretRef | None:
    """``llm_api_key`` as given: ``secret("ENV")``, its saved form ``${oc.env:ENV}``
    or ``{"secret_env": "ENV"}``.  A literal key is refused (and never echoed)."""
    if value is None or isinstance(value, SecretRef):
        return value
    if isinstance(value, str) and _REFERENCE.match(value):
        return SecretRef(_REFERENCE.match(value).group(1))
    if isinstance(value, Mapping) and set(value) == {"secret_env"}:
        return SecretRef(value["secret_env"])
    shown = f"<{type(value).__name__} of length {len(value)}, not shown>" if isinstance(value, str) \
        else f"<{type(value).__name__}, not shown>"
    raise SettingsError("a literal API key is refused", key=key, value=shown,
                        expected='tao_automl.secret("ENV_VAR") naming the environment variable that holds the key',
                        hint="keys never reach settings.json, logs or the brain log")


def _field_names() -> list[str]:
    return [a.name for a in attrs.fields(AutoMLSettings)]


def _did_you_mean(key: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(key, choices, n=1, cutoff=0.6)
    return f"did you mean '{close[0]}'?" if close else "see AutoMLSettings for the accepted keys"


#: run() arguments that override a setting: canonical field -> argument name.
OVERRIDE_ARGS = {"algorithm": "automl_algorithm"}


def written_keys(raw: Any, **overrides: Any) -> dict[str, str]:
    """Canonical setting -> the spelling the user wrote it with: a key of
    ``raw`` (maybe an alias), or the ``run()`` argument of a non-None override."""
    out: dict[str, str] = {}
    if isinstance(raw, Mapping):
        for key in raw:
            if isinstance(key, str) and SETTINGS_ALIASES.get(key, key):
                out[SETTINGS_ALIASES.get(key, key)] = key
    for name, value in overrides.items():
        if value is not None:
            out[name] = OVERRIDE_ARGS.get(name, name)
    return out


def name_as_written(exc: AutoMLError, written: Mapping[str, str]) -> AutoMLError:
    """Rewrite ``exc`` (in place; returned) so its key is the spelling the user
    gave: ``.key`` becomes it, and the message names it with the canonical name
    beside it, e.g. ``key 'automl_settings.automl_max_recommendations'
    (max_recommendations)``.  Errors about keys the user spelled canonically are
    left alone."""
    key = exc.key
    if key is None:  # many checks name the key in the message only (describe(...))
        found = re.search(r"key '([^']+)'", exc.message)
        key = found.group(1) if found else None
    if not isinstance(key, str) or not written:
        return exc
    prefix = "automl_settings." if key.startswith("automl_settings.") else ""
    head, dot, tail = key[len(prefix):].partition(".")
    canon = SETTINGS_ALIASES.get(head, head)
    user = written.get(canon) if canon else None
    if not user or user == head:
        return exc
    if user in OVERRIDE_ARGS.values():
        new = user + dot + tail  # a run() argument
    elif not prefix and head in OVERRIDE_ARGS.values():
        new = "automl_settings." + user + dot + tail  # error named the argument; the user used the setting
    else:
        new = prefix + user + dot + tail
    named = f"key '{new}' ({canon + dot + tail})"
    message = exc.message.replace(f"key '{key}'", named)
    if message == exc.message:
        message += f" ({named}, as written)"
    exc.key, exc.message, exc.args = new, message, (message,)
    return exc


def parse_settings(raw: Mapping[str, Any] | AutoMLSettings | None, **overrides: Any) -> AutoMLSettings:
    """Structure ``automl_settings`` into :class:`AutoMLSettings`.

    ``overrides`` (non-None values only) win over ``raw``; e.g. the
    ``automl_algorithm=`` argument of ``run()``.  Errors name each key as the
    user wrote it (:func:`name_as_written`).
    """
    try:
        return _parse_settings(raw, **overrides)
    except SettingsError as exc:
        raise name_as_written(exc, written_keys(raw, **overrides)) from exc.__cause__


def _parse_settings(raw: Mapping[str, Any] | AutoMLSettings | None, **overrides: Any) -> AutoMLSettings:
    if isinstance(raw, AutoMLSettings):
        data: dict[str, Any] = converter.unstructure(raw)
    elif raw is None:
        data = {}
    elif isinstance(raw, Mapping):
        data = {}
        fields = _field_names()
        for key, value in translate_settings(raw).items():
            if not isinstance(key, str):
                raise SettingsError("setting keys must be strings", key=key)
            canon = SETTINGS_ALIASES.get(key, key)
            if canon is None:
                raise SettingsError.from_message(
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
                raise SettingsError.from_message(
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
                raise SettingsError("conflicting settings", key=f"automl_settings.{key}", value=value,
                                    expected=f"the same value as '{canon}' ({data[canon]!r}) or only one of them")
            if canon == "session_id" and value is not None:
                check_session_id(value, key="automl_settings.session_id")  # renamed as written below
            _check_de_range(canon, key, value)  # dehb's DE knobs: named as the user wrote them
            data[canon] = value
    else:
        raise SettingsError("automl_settings must be a mapping", value=type(raw).__name__, expected="a dict")
    for key, value in overrides.items():
        if value is not None:
            data[key] = value
    if data.get("llm_api_key") is not None:
        data["llm_api_key"] = api_key_ref(data["llm_api_key"])
    if "direction" in data and isinstance(data["direction"], str):
        data["direction"] = DIRECTIONS.get(data["direction"].lower(), data["direction"])
    if isinstance(data.get("wandb"), bool):
        data["wandb"] = {"enabled": data["wandb"]}
    if data.get("wandb") is not None and not isinstance(data["wandb"], Mapping | WandbSettings):
        raise SettingsError("invalid setting", key="wandb", value=data["wandb"],
                            expected="true/false or a mapping (project, entity, group, tags, mode, dir)")
    _check_types(data)
    for key in RANGES:  # before cattrs turns a huge int into a float (OverflowError)
        _check_range(key, data.get(key))
    if isinstance(data.get("wandb"), Mapping):
        _check_types(data["wandb"], WandbSettings, prefix="wandb.")
    try:
        return converter.structure(data, AutoMLSettings)
    except SettingsError:
        raise
    except cattrs.errors.ClassValidationError as exc:
        inner = _find_settings_error(exc)
        if inner is not None:
            raise inner from None
        raise SettingsError(_explain_cattrs(exc, data)) from None
    except (TypeError, ValueError) as exc:
        raise SettingsError("invalid automl_settings", value=str(exc)) from None


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
        # the canonical key; parse_settings names it as the user wrote it (name_as_written)
        raise SettingsError("invalid setting", key=f"automl_settings.{canon}", value=value, expected=rule[1])


def _check_types(data: Mapping[str, Any], cls: type | None = None, prefix: str = "") -> None:
    """Scalar type checks before the (strict) converter runs: they name the key
    and the expected type in the catalogue's words (docs/bad-inputs.md)."""
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
        if expected is None or " | " in typ.replace(" | None", ""):
            continue  # a union of several types (e.g. baseline: bool | str): its validator checks it
        ok = isinstance(value, expected) and not (bool not in expected and isinstance(value, bool))
        if not ok:
            raise SettingsError("wrong type in automl_settings", key=prefix + att.name, value=value,
                                expected=label)


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
