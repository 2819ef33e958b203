"""The bad-input catalogue (issue 7): every entry is one wrong input to
``AutoMLRunner(...)`` / ``runner.run(...)`` that must be rejected with an
:class:`~tao_automl.errors.AutoMLError` subclass whose message names the bad
value, *before* any job is launched, and without writing anything outside
the workspace.

Each case works on a private copy of ``examples/toy_skill`` (or of a packaged
skill) inside ``tmp_path``; the whole ``tmp_path`` tree outside the workspace
is listed before and after the call and must be unchanged, and the workspace
must hold no ``ledger/`` and no ``trials/`` folder (nothing was launched).

The table in ``docs/bad-inputs.md`` lists the same cases.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from s3_fixture import s3_server_fixture  # noqa: F401  (the s3_server fixture)

from tao_automl.errors import (
    AutoMLError,
    CredentialError,
    PreflightError,
    SchemaGateError,
    SearchSpaceError,
    SettingsError,
    SkillError,
    SpecError,
    WorkspaceError,
)

REPO = Path(__file__).resolve().parents[2]
TOY = REPO / "examples" / "toy_skill"
COSMOS = REPO / "skills" / "tao-finetune-cosmos-reason"
BASE_SETTINGS = {"max_recommendations": 2, "seed": 0, "baseline": False, "final_eval": False}
# "billion laughs": 9 levels of 9 aliases, 9**9 nodes once expanded
BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 9)}]\n" for i in range(8))


class Ctx:
    """A private skill copy + workspace under tmp_path, and small editors."""

    def __init__(self, tmp: Path, monkeypatch: pytest.MonkeyPatch, source: Path = TOY) -> None:
        self.tmp = tmp
        self.monkeypatch = monkeypatch
        self.skill = tmp / "skill"
        shutil.copytree(source, self.skill)
        self.ws = tmp / "ws"
        self.runner_kwargs: dict[str, Any] = {}

    def path(self, rel: str) -> Path:
        return self.skill / rel

    def write(self, rel: str, text: str) -> None:
        self.path(rel).write_text(text)

    def edit_yaml(self, rel: str, fn: Callable[[Any], Any]) -> None:
        data = yaml.safe_load(self.path(rel).read_text())
        out = fn(data)
        self.path(rel).write_text(yaml.safe_dump(data if out is None else out, sort_keys=False))

    def edit_json(self, rel: str, fn: Callable[[Any], Any]) -> None:
        data = json.loads(self.path(rel).read_text())
        out = fn(data)
        self.path(rel).write_text(json.dumps(data if out is None else out))

    def info(self, fn: Callable[[dict], Any]) -> None:
        self.edit_yaml("references/skill_info.yaml", fn)

    def schema(self, fn: Callable[[dict], Any]) -> None:
        self.edit_json("schemas/train.schema.json", fn)


def _tree(root: Path, skip: Path) -> set[str]:
    out = set()
    for dirpath, dirnames, filenames in os.walk(root):
        if Path(dirpath) == skip or skip in Path(dirpath).parents:
            dirnames[:] = []
            continue
        for name in dirnames + filenames:
            p = Path(dirpath, name)
            if p == skip:
                continue
            st = p.lstat()
            out.add(f"{p.relative_to(root)}|{st.st_size}|{st.st_mtime_ns}")
    return out


def assert_rejected(ctx: Ctx, error: type[AutoMLError], excerpt: str, run_kwargs: dict[str, Any],
                    *, runner_kwargs: dict[str, Any] | None = None) -> AutoMLError:
    """Call AutoMLRunner(...).run(...) and check the catalogue's promises."""
    from tao_automl.runner import AutoMLRunner

    ctx.monkeypatch.chdir(ctx.tmp)  # relative writes would land in the checked tree
    # The two places a run launches jobs: a launch fails the test at once.
    for name in ("run_search", "run_evaluation"):
        ctx.monkeypatch.setattr(f"tao_automl.execution.run.{name}", _launched)
    before = _tree(ctx.tmp, ctx.ws)
    kwargs = {"automl_settings": dict(BASE_SETTINGS), "spec_overrides": {"train.num_epochs": 2}}
    kwargs.update(run_kwargs)
    rkw = {"skill_dir": ctx.skill, "workspace_dir": ctx.ws, **(runner_kwargs or {})}
    with pytest.raises(AutoMLError) as info:
        AutoMLRunner(**rkw).run(**kwargs)
    exc = info.value
    assert isinstance(exc, error), f"{type(exc).__name__} is not a {error.__name__}: {exc}"
    assert excerpt in str(exc), f"{excerpt!r} not named in: {exc}"
    assert "plain-text-secret-value" not in str(exc)
    # nothing launched: no ledger, no trial folders anywhere in the workspace
    if ctx.ws.exists():
        launched = [p for p in ctx.ws.rglob("*") if p.name in ("ledger", "trials", "ray")]
        assert not launched, launched
    assert _tree(ctx.tmp, ctx.ws) == before, "something was written outside the workspace"
    return exc


class Launched(BaseException):
    """Not an AutoMLError: a launch must never look like a clean rejection."""


def _launched(*args: Any, **kwargs: Any) -> None:
    raise Launched("a job launch was attempted before the bad input was rejected")


@dataclass
class Case:
    id: str
    error: type[AutoMLError]
    excerpt: str
    setup: Callable[[Ctx], dict[str, Any] | None] = lambda ctx: None
    source: Path = TOY
    doc: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def _settings(**kw: Any) -> Callable[[Ctx], dict[str, Any]]:
    return lambda ctx: {"automl_settings": {**BASE_SETTINGS, **kw}}


def _run(**kw: Any) -> Callable[[Ctx], dict[str, Any]]:
    return lambda ctx: dict(kw)


def _del(rel: str) -> Callable[[Ctx], None]:
    return lambda ctx: ctx.path(rel).unlink()


def _put(rel: str, text: str) -> Callable[[Ctx], None]:
    return lambda ctx: ctx.write(rel, text)


def _put_bytes(rel: str, data: bytes) -> Callable[[Ctx], None]:
    return lambda ctx: ctx.path(rel).write_bytes(data) and None


def _info_set(key: str, value: Any) -> Callable[[Ctx], None]:
    def setup(ctx: Ctx) -> None:
        def fn(d: dict) -> None:
            node = d
            parts = key.split("/")
            for p in parts[:-1]:
                node = node[p]
            node[parts[-1]] = value
        ctx.info(fn)
    return setup


def _schema_lr(**kw: Any) -> Callable[[Ctx], None]:
    def setup(ctx: Ctx) -> None:
        ctx.schema(lambda d: d["properties"]["train"]["properties"]["lr"].update(kw))
    return setup


def _ranges(ranges: dict[str, Any], **run: Any) -> Callable[[Ctx], dict[str, Any]]:
    return lambda ctx: {"custom_param_ranges": ranges, **run}


def _epoch_searchable(algorithm: str, **settings: Any) -> Callable[[Ctx], dict[str, Any]]:
    def setup(ctx: Ctx) -> dict[str, Any]:
        def enable(d: dict) -> None:
            d["automl_disabled_parameters"].remove("train.num_epochs")
            d["properties"]["train"]["properties"]["num_epochs"]["automl_enabled"] = True
        ctx.schema(enable)
        return {"automl_algorithm": algorithm, "automl_hyperparameters": ["train.lr", "train.num_epochs"],
                "automl_settings": {**BASE_SETTINGS, **settings}}
    return setup


def _credential(ctx: Ctx) -> None:
    ctx.monkeypatch.delenv("TAO_BAD_INPUT_NGC_KEY", raising=False)
    ctx.info(lambda d: d.update(required_credentials=["TAO_BAD_INPUT_NGC_KEY"]))


def _secret_unset(ctx: Ctx) -> dict[str, Any]:
    from tao_automl import secret

    ctx.monkeypatch.delenv("TAO_BAD_INPUT_UNSET_SECRET", raising=False)
    return {"spec_overrides": {"train.num_epochs": 2, "train.api_key": secret("TAO_BAD_INPUT_UNSET_SECRET")}}


def _outside_path(key: str, absolute: bool = False) -> Callable[[Ctx], None]:
    """skill_info.yaml ``key`` names an existing file outside the skill folder."""
    def setup(ctx: Ctx) -> None:
        out = ctx.tmp / "outside.txt"
        out.write_text("train: {lr: 0.1}\n")
        _info_set(key, str(out) if absolute else "../../outside.txt")(ctx)
    return setup


def _symlink_out(rel: str) -> Callable[[Ctx], None]:
    """A skill file replaced by a symlink to an identical file outside the folder."""
    def setup(ctx: Ctx) -> None:
        out = ctx.tmp / ("outside-" + Path(rel).name)
        out.write_bytes(ctx.path(rel).read_bytes())
        ctx.path(rel).unlink()
        ctx.path(rel).symlink_to(out)
    return setup


LLM_SETTINGS = {"llm_endpoint": "http://127.0.0.1:9/v1", "llm_model": "m"}


def _llm(algorithm: str = "llm", **kw: Any) -> Callable[[Ctx], dict[str, Any]]:
    def setup(ctx: Ctx) -> dict[str, Any]:
        settings = {k: v for k, v in {**BASE_SETTINGS, **LLM_SETTINGS, **kw}.items() if v is not None}
        return {"automl_algorithm": algorithm, "automl_settings": settings}
    return setup


def _llm_key_unset(ctx: Ctx) -> dict[str, Any]:
    from tao_automl import secret

    ctx.monkeypatch.delenv("TAO_BAD_INPUT_LLM_KEY", raising=False)
    return _llm(llm_api_key=secret("TAO_BAD_INPUT_LLM_KEY"))(ctx)


def _cosmos(**run: Any) -> Callable[[Ctx], dict[str, Any]]:
    def setup(ctx: Ctx) -> dict[str, Any]:
        return {"automl_settings": {**BASE_SETTINGS, "metric": "val/avg_loss", "direction": "minimize"},
                "spec_overrides": {}, **run}
    return setup


CASES: list[Case] = [
    # -- model skill files ----------------------------------------------------
    Case("skill_info_missing", SkillError, "skill_info.yaml", _del("references/skill_info.yaml")),
    Case("skill_info_not_yaml", SkillError, "skill_info.yaml",
         _put("references/skill_info.yaml", "name: toy\nactions: [train\n  : :\n")),
    Case("skill_info_not_mapping", SkillError, "'list'", _put("references/skill_info.yaml", "- a\n- b\n")),
    Case("skill_info_actions_wrong_type", SkillError, "'train-only'", _info_set("actions", "train-only")),
    Case("skill_info_automl_enabled_wrong_type", SkillError, "'sometimes'",
         _info_set("automl_enabled", "sometimes")),
    Case("skill_info_shorthand_wrong_type", SkillError, "spec_shorthand_keys",
         _info_set("spec_shorthand_keys", ["lr", "batch_size"])),
    Case("skill_info_data_source_wrong_type", SkillError, "'train.npz'",
         _info_set("data_sources/train/dataset.train_path", "train.npz")),
    Case("skill_info_unknown_spec_param_function", SpecError, "create_bogus_file",
         _info_set("spec_params/train/results_dir", "create_bogus_file")),
    Case("action_not_in_skill", SkillError, "export", extra={"runner": {"action": "export"}}),
    Case("template_missing", SchemaGateError, "spec_template_train.yaml",
         _del("references/spec_template_train.yaml")),
    Case("template_unparsable", SchemaGateError, "spec_template_train.yaml",
         _put("references/spec_template_train.yaml", "train: [1, 2\n  lr: {\n")),
    Case("template_not_mapping", SchemaGateError, "spec_template_train.yaml",
         _put("references/spec_template_train.yaml", "- 1\n- 2\n")),
    Case("schema_missing", SchemaGateError, "train.schema.json", _del("schemas/train.schema.json")),
    Case("schema_not_json", SchemaGateError, "train.schema.json", _put("schemas/train.schema.json", "{not json")),
    Case("schema_not_object", SchemaGateError, "list", _put("schemas/train.schema.json", "[1, 2]")),
    Case("schema_type_not_a_name", SchemaGateError, "{'name': 'float'}", _schema_lr(type={"name": "float"})),
    Case("schema_bound_not_a_number", SchemaGateError, "'tiny'", _schema_lr(minimum="tiny")),
    Case("schema_option_weights_not_numbers", SchemaGateError, "'heavy'",
         lambda ctx: ctx.schema(lambda d: d["properties"]["model"]["properties"]["activation"].update(
             option_weights=["heavy", 0.3, 0.2]))),
    Case("schema_properties_not_object", SchemaGateError, "'oops'",
         lambda ctx: ctx.schema(lambda d: d["properties"]["train"].update(properties="oops"))),
    Case("schema_default_parameters_not_list", SchemaGateError, "'train.lr'",
         lambda ctx: ctx.schema(lambda d: d.update(automl_default_parameters="train.lr"))),
    Case("schema_automl_enabled_not_bool", SchemaGateError, "'false'", _schema_lr(automl_enabled="false")),
    Case("sidecar_unparsable", SkillError, "automl.yaml", _put("references/automl.yaml", "metric: [val_loss\n")),
    Case("sidecar_unknown_constraint", SearchSpaceError, "bogus_kind",
         _put("references/automl.yaml", "constraints:\n  - {type: bogus_kind, param: train.lr}\n")),
    # -- algorithm and settings -------------------------------------------------
    Case("unknown_algorithm", SettingsError, "bayesain", _run(automl_algorithm="bayesain")),
    Case("unknown_setting", SettingsError, "max_recomendations", _settings(max_recomendations=4)),
    Case("settings_not_mapping", SettingsError, "list", _run(automl_settings=["max_recommendations"])),
    Case("budget_wrong_type", SettingsError, "'ten'", _settings(max_recommendations="ten")),
    Case("budget_float", SettingsError, "2.5", _settings(max_recommendations=2.5)),
    Case("seed_wrong_type", SettingsError, "'abc'", _settings(seed="abc")),
    Case("bool_setting_wrong_type", SettingsError, "'no'", _settings(baseline="no")),
    Case("baseline_mode_unknown", SettingsError, "'untuned'", _settings(baseline="untuned")),
    Case("negative_budget", SettingsError, "-5", _settings(max_recommendations=-5)),
    Case("zero_concurrency", SettingsError, "max_concurrent", _settings(max_concurrent=0)),
    Case("negative_timeout", SettingsError, "-1", _settings(trial_timeout_s=-1)),
    Case("negative_retries", SettingsError, "-3", _settings(max_retries=-3)),
    Case("bad_direction", SettingsError, "sideways", _settings(direction="sideways")),
    Case("reduction_factor_below_2", SettingsError, "reduction_factor", _settings(reduction_factor=1)),
    Case("bad_checkpoint_selection", SettingsError, "worst", _settings(checkpoint_selection="worst")),
    Case("unsupported_alias", SettingsError, "epoch_multiplier", _settings(epoch_multiplier=2)),
    Case("conflicting_aliases", SettingsError, "num_recommendations",
         _settings(num_recommendations=5, max_recommendations=6)),
    Case("alias_wrong_type", SettingsError, "key 'automl_max_recommendations' (max_recommendations)",
         _run(automl_settings={"seed": 0, "baseline": False, "final_eval": False,
                               "automl_max_recommendations": "ten"})),
    Case("alias_checked_after_parsing", SettingsError, "key 'automl_settings.grace_period' (min_epochs)",
         _run(automl_algorithm="asha",
              automl_settings={**BASE_SETTINGS, "grace_period": 5, "automl_max_epochs": 3})),
    Case("metric_is_kpi", SettingsError, "kpi", _settings(metric="kpi")),
    Case("wandb_wrong_type", SettingsError, "value 5", _settings(wandb=5)),
    Case("wandb_unknown_key", SettingsError, "modee", _settings(wandb={"modee": "offline"})),
    Case("wandb_bad_mode", SettingsError, "sometimes", _settings(wandb={"mode": "sometimes"})),
    Case("sampler_unknown", SettingsError, "'gp'", _settings(sampler="gp")),
    Case("sampler_for_wrong_algorithm", SettingsError, "does not apply to algorithm 'bayesian'",
         _settings(sampler="bayesian")),
    # -- nvidia-tao-automl spellings (docs/compatibility.md) -----------------------------
    Case("peer_setting_not_available", SettingsError, "automl_early_stop_threshold",
         _settings(automl_early_stop_threshold=0.5)),
    Case("peer_llm_key_not_echoed", SettingsError, "llm_api_key", _settings(llm_api_key="sk-never-shown-42")),
    Case("peer_artifact_deletion", SettingsError, "automl_delete_intermediate_ckpt",
         _settings(automl_delete_intermediate_ckpt=True)),
    Case("peer_knob_for_wrong_algorithm", SettingsError, "does not apply to algorithm 'bayesian'",
         _settings(automl_perturbation_factor=1.5)),
    Case("peer_range_override_not_list", SettingsError, "automl_range_override",
         _settings(automl_range_override={"train.lr": [0.1, 0.2]})),
    Case("peer_final_evaluation_not_mapping", SettingsError, "final_evaluation",
         _settings(final_evaluation=0.9)),
    Case("run_execution_script_missing", SettingsError, "nope.py",
         _run(execution={"type": "python_script", "script": "nope.py"})),
    Case("poll_interval_not_positive", SettingsError, "poll_interval", extra={"runner": {"poll_interval": 0}}),
    Case("dehb_mutation_factor_out_of_range", SettingsError, "automl_settings.automl_mutation_factor",
         _run(automl_algorithm="dehb", automl_settings={**BASE_SETTINGS, "automl_mutation_factor": 3.0})),
    Case("dehb_crossover_prob_out_of_range", SettingsError, "crossover_prob', value 1.5",
         _run(automl_algorithm="dehb", automl_settings={**BASE_SETTINGS, "crossover_prob": 1.5})),
    Case("dehb_setting_for_wrong_algorithm", SettingsError, "'mutation_factor' does not apply to algorithm 'asha'",
         _run(automl_algorithm="asha", automl_settings={**BASE_SETTINGS, "mutation_factor": 0.8, "max_epochs": 4})),
    Case("epoch_budget_for_wrong_algorithm", SettingsError, "'epoch_budget' does not apply to algorithm 'bayesian'",
         _settings(epoch_budget=100)),
    Case("dehb_strategy_unknown", SettingsError, "key 'dehb_strategy', value 'best1_bin'",
         _run(automl_algorithm="dehb", automl_settings={**BASE_SETTINGS, "dehb_strategy": "best1_bin"})),
    Case("dehb_promotion_unknown", SettingsError, "key 'dehb_promotion', value 'halving'",
         _run(automl_algorithm="dehb", automl_settings={**BASE_SETTINGS, "dehb_promotion": "halving"})),
    Case("dehb_promotion_for_wrong_algorithm", SettingsError,
         "'dehb_promotion' does not apply to algorithm 'asha'",
         _run(automl_algorithm="asha", automl_settings={**BASE_SETTINGS, "dehb_promotion": "evolve",
                                                         "max_epochs": 4})),
    Case("dehb_min_epochs_not_below_max", SettingsError, "min_epochs",
         _run(automl_algorithm="dehb", automl_settings={**BASE_SETTINGS, "max_epochs": 4, "min_epochs": 4})),
    Case("pbt_fixed_matches_nothing", SettingsError, "model.hiden_size",
         _run(automl_algorithm="pbt", automl_settings={**BASE_SETTINGS, "pbt_fixed": ["model.hiden_size"],
                                                       "max_epochs": 4})),
    Case("pbt_nothing_to_mutate", SettingsError, "no parameter it may change",
         _run(automl_algorithm="pbt", automl_hyperparameters=["model.hidden_size", "model.activation"],
              automl_settings={**BASE_SETTINGS, "max_epochs": 4})),
    # -- hyperparameters and custom ranges ---------------------------------------
    Case("hyperparameter_not_in_schema", SearchSpaceError, "train.bogus_lr",
         _run(automl_hyperparameters=["train.bogus_lr"])),
    Case("hyperparameter_disabled", SearchSpaceError, "train.seed", _run(automl_hyperparameters=["train.seed"])),
    Case("hyperparameters_not_a_list", SettingsError, "'train.lr'", _run(automl_hyperparameters="train.lr")),
    Case("hyperparameter_not_a_string", SettingsError, "42", _run(automl_hyperparameters=["train.lr", 42])),
    Case("custom_range_below_schema_min", SearchSpaceError, "-1",
         _ranges({"train.lr": {"valid_min": -1.0, "valid_max": 0.1}})),
    Case("custom_range_above_schema_max", SearchSpaceError, "512",
         _ranges({"model.hidden_size": {"valid_min": 8, "valid_max": 512}})),
    Case("custom_range_min_above_max", SearchSpaceError, "0.5",
         _ranges({"train.lr": {"valid_min": 0.5, "valid_max": 0.1}})),
    Case("custom_range_bad_option", SearchSpaceError, "swish",
         _ranges({"model.activation": {"valid_options": ["relu", "swish"]}})),
    Case("custom_range_bound_wrong_type", SearchSpaceError, "'small'",
         _ranges({"train.lr": {"valid_min": "small"}})),
    Case("custom_range_not_a_mapping", SearchSpaceError, "'fast'", _ranges({"train.lr": "fast"})),
    Case("custom_range_unknown_key", SearchSpaceError, "low", _ranges({"train.lr": {"low": 0.001}})),
    Case("custom_range_unknown_param", SearchSpaceError, "train.nope", _ranges({"train.nope": {"valid_min": 1}})),
    Case("custom_ranges_not_a_mapping", SettingsError, "list", _run(custom_param_ranges=[("train.lr", 0.1)])),
    # -- spec overrides ----------------------------------------------------------
    Case("override_into_scalar", SpecError, "train.lr.value", _run(spec_overrides={"train.lr.value": 0.1})),
    Case("override_index_into_mapping", SpecError, "train[0]", _run(spec_overrides={"train[0]": 1})),
    Case("override_malformed_path", SpecError, "train..lr", _run(spec_overrides={"train..lr": 0.1})),
    Case("override_unclosed_bracket", SpecError, "dataset[0", _run(spec_overrides={"dataset[0": 1})),
    Case("overrides_not_a_mapping", SpecError, "list", _run(spec_overrides=["train.lr=0.1"])),
    Case("override_shorthand_conflict", SpecError, "train.lr", _run(spec_overrides={"lr": 0.1, "train.lr": 0.2})),
    Case("override_shared_output_dir", SpecError, "/data/shared-results",
         _run(spec_overrides={"train.num_epochs": 2, "results_dir": "/data/shared-results"})),
    # -- data and credentials ------------------------------------------------------
    Case("dataset_path_missing", PreflightError, "no-such-train.npz",
         lambda ctx: {"train_dataset_uri": str(ctx.tmp / "no-such-train.npz")}),
    Case("dataset_uri_not_a_string", SettingsError, "123", _run(eval_dataset_uri=123)),
    Case("dataset_unknown_source", SettingsError, "trian_datasets",
         lambda ctx: {"dataset_uris": {"trian_datasets": str(ctx.skill)}}),
    Case("dataset_unknown_protocol", PreflightError, "nosuchproto://data/train.npz",
         _run(train_dataset_uri="nosuchproto://data/train.npz")),
    Case("base_checkpoint_missing", PreflightError, "no-such.pth",
         lambda ctx: {"base_checkpoint": str(ctx.tmp / "no-such.pth")}),
    Case("required_credential_unset", CredentialError, "TAO_BAD_INPUT_NGC_KEY", _credential),
    # -- batch, conflicts, budgets -------------------------------------------------
    Case("batch_impossible_for_samples", SettingsError, "train_sample_count",
         _settings(train_sample_count=3, shard_count=4)),
    Case("batch_minimum_above_sample_cap", SettingsError, "train.batch_size",
         _ranges({"train.batch_size": {"valid_min": 64, "valid_max": 128}},
                 automl_settings={**BASE_SETTINGS, "train_sample_count": 40})),
    Case("cosmos_fps_and_nframes", SpecError, "custom.vision.fps",
         _cosmos(spec_overrides={"custom.vision.fps": 2}), source=COSMOS),
    Case("cosmos_search_fps_with_nframes_set", SearchSpaceError, "custom.vision.fps",
         _cosmos(automl_hyperparameters=["custom.vision.fps"]), source=COSMOS),
    Case("grid_larger_than_budget", SettingsError, "max_recommendations",
         _run(automl_algorithm="grid", automl_hyperparameters=["train.lr", "model.activation"],
              automl_settings={**BASE_SETTINGS, "grid_points": 3})),
    Case("multi_fidelity_epoch_searched", SettingsError, "train.num_epochs", _epoch_searchable("asha")),
    Case("multi_fidelity_one_epoch", SettingsError, "max_epochs",
         _run(automl_algorithm="hyperband", automl_settings={**BASE_SETTINGS, "max_epochs": 1})),
    Case("multi_fidelity_min_above_max", SettingsError, "min_epochs",
         _run(automl_algorithm="asha", automl_settings={**BASE_SETTINGS, "max_epochs": 3, "min_epochs": 5})),
    # -- platform --------------------------------------------------------------------
    Case("unknown_platform", SettingsError, "key 'platform_sdk' (platform), value 'slurmm'",
         extra={"runner": {"platform_sdk": "slurmm"}}),
    Case("unknown_platform_via_sdk", SettingsError, "key 'sdk' (platform), value 'slurmm'",
         extra={"runner": {"sdk": "slurmm"}}),
    Case("unknown_platform_kwarg", SettingsError, "partitionn", _run(partitionn="gpu")),
    Case("negative_gpu_count", SettingsError, "-1", _run(gpu_count=-1)),
    Case("zero_nodes", SettingsError, "num_nodes", _run(num_nodes=0)),
    Case("env_not_a_mapping", SettingsError, "env", _run(env=["A=1"])),
    Case("secret_env_bad_name", SettingsError, "secret_env", _run(secret_env=["NOT A NAME"])),
    Case("secret_override_unset", CredentialError, "TAO_BAD_INPUT_UNSET_SECRET", _secret_unset),
    Case("job_timeout_wrong_type", SettingsError, "'soon'", _run(job_timeout_s="soon")),
    Case("storage_options_plain_credential", SettingsError, "storage_options.key",
         extra={"runner": {"storage_options": {"key": "AKIA-x", "secret": "plain-text-secret-value"}}}),
    Case("platform_and_sdk_both", SettingsError, "sdk",
         extra={"runner": {"platform_sdk": "local", "sdk": "slurm"}}),
    # data that exists on this machine but not where the jobs run: the container's mounts
    Case("docker_dataset_not_mounted", PreflightError, "not under any of the container's mounts",
         lambda ctx: {"train_dataset_uri": str(ctx.skill / "references" / "skill_info.yaml"), "image": "toy:1",
                      "mounts": [f"{ctx.tmp}/elsewhere:/data:ro"]},
         extra={"runner": {"platform_sdk": "docker"}}),
    Case("slurm_path_check_unknown", SettingsError, "'sometimes'", _run(path_check="sometimes"),
         extra={"runner": {"platform_sdk": "slurm"}}),
    # -- workspace and resume ----------------------------------------------------------
    Case("resume_nothing_to_resume", WorkspaceError, "nothing to resume", _run(resume=True)),
    Case("workspace_unknown_protocol", WorkspaceError, "nosuchproto://bucket/ws",
         extra={"runner": {"workspace_dir": "nosuchproto://bucket/ws"}}),
    # -- escapes (issue 12): a session id or a skill path leaving its folder ------------
    Case("session_id_escapes", SettingsError, "'../../x'", _settings(session_id="../../x")),
    Case("session_id_parent", SettingsError, "automl_settings.session_id', value '..'", _settings(session_id="..")),
    Case("session_id_dot", SettingsError, "automl_settings.session_id', value '.'", _settings(session_id=".")),
    Case("session_id_newline", SettingsError, "'run\\n1'", _settings(session_id="run\n1")),
    Case("session_id_nul", SettingsError, "'a\\x00b'", _settings(session_id="a\x00b")),
    Case("session_id_alias_escapes", SettingsError, "automl_settings.experiment_name",
         _settings(experiment_name="../x")),
    Case("resume_session_id_escapes", SettingsError, "'../../x'",
         _run(resume=True, automl_settings={**BASE_SETTINGS, "session_id": "../../x"})),
    Case("skill_template_outside", SkillError, "spec_templates.train", _outside_path("spec_templates/train")),
    Case("skill_template_symlink_out", SkillError, "spec_templates.train",
         _symlink_out("references/spec_template_train.yaml")),
    Case("skill_script_outside", SkillError, "actions.train.execution.script",
         _outside_path("actions/train/execution/script", absolute=True)),
    Case("skill_cwd_outside", SkillError, "actions.train.execution.cwd", _info_set("actions/train/execution/cwd", "..")),
    Case("skill_schema_symlink_out", SkillError, "schemas/train.schema.json",
         _symlink_out("schemas/train.schema.json")),
    # -- issue 12: hangs, resource exhaustion, silent wrong answers ---------------------
    Case("skill_info_alias_bomb", SkillError, "alias bomb", _put("references/skill_info.yaml", BOMB)),
    Case("skill_info_not_utf8", SkillError, "not UTF-8",
         _put_bytes("references/skill_info.yaml", b"name: toy\n\xff\xfe: x\n")),
    Case("template_alias_bomb", SchemaGateError, "alias bomb", _put("references/spec_template_train.yaml", BOMB)),
    Case("template_not_utf8", SchemaGateError, "spec_template_train.yaml",
         _put_bytes("references/spec_template_train.yaml", b"train:\n  lr: \xff\n")),
    Case("sidecar_alias_bomb", SkillError, "alias bomb", _put("references/automl.yaml", BOMB)),
    Case("schema_too_deep", SchemaGateError, "train.schema.json", lambda ctx: ctx.write(
        "schemas/train.schema.json", '{"properties": ' + '{"a": {"properties": ' * 5000 + "{}" + "}}" * 5000 + "}")),
    Case("schema_not_utf8", SchemaGateError, "train.schema.json",
         _put_bytes("schemas/train.schema.json", b'{"properties": {"\xff": 1}}')),
    Case("schema_bound_nan", SchemaGateError, "train.lr.minimum", lambda ctx: ctx.write(
        "schemas/train.schema.json",
        ctx.path("schemas/train.schema.json").read_text().replace('"minimum": 0.0001', '"minimum": NaN'))),
    Case("schema_minimum_infinity", SchemaGateError, "train.lr.minimum", lambda ctx: ctx.write(
        "schemas/train.schema.json",
        ctx.path("schemas/train.schema.json").read_text().replace('"minimum": 0.0001', '"minimum": Infinity'))),
    Case("sidecar_metric_not_a_name", SkillError, "['val_loss', 'train_loss']",
         _put("references/automl.yaml", "metric: [val_loss, train_loss]\n")),
    Case("sidecar_direction_unknown", SkillError, "upward", _put("references/automl.yaml", "metric_direction: upward\n")),
    Case("execution_script_missing", SkillError, "scripts/no_such_train.py",
         _info_set("actions/train/execution/script", "scripts/no_such_train.py")),
    Case("override_not_an_enum_option", SpecError, "'swish'",
         _run(spec_overrides={"train.num_epochs": 2, "model.activation": "swish"})),
    Case("override_int_wrong_type", SpecError, "'ten'", _run(spec_overrides={"train.num_epochs": "ten"})),
    Case("override_below_schema_minimum", SpecError, "train.num_epochs", _run(spec_overrides={"train.num_epochs": 0})),
    Case("override_negative_interval", SpecError, "train.checkpoint_interval",
         _run(spec_overrides={"train.num_epochs": 2, "train.checkpoint_interval": -1})),
    Case("seed_negative", SettingsError, "seed", _settings(seed=-1)),
    Case("seed_too_large", SettingsError, str(2**64), _settings(seed=2**64)),
    Case("pbt_population_huge", SettingsError, "population_size",
         _run(automl_algorithm="pbt", automl_settings={**BASE_SETTINGS, "population_size": 10**9})),
    Case("reduction_factor_huge", SettingsError, "reduction_factor", _settings(reduction_factor=10**9)),
    Case("max_concurrent_huge", SettingsError, "10000", _settings(max_concurrent=10000)),
    Case("timeout_nan", SettingsError, "nan", _settings(trial_timeout_s=float("nan"))),
    Case("estimate_huge", SettingsError, "1e+308", _settings(estimate_trial_s=1e308)),
    Case("metric_not_a_name", SettingsError, "'(('", _settings(metric="((")),
    Case("metric_regex", SettingsError, "'.*'", _settings(metric=".*")),
    # -- LLM-guided search (algorithm 'llm') ----------------------------------------
    Case("llm_literal_api_key", SettingsError, "literal API key is refused",
         _llm(llm_api_key="sk-do-not-echo-0123456789")),
    Case("llm_api_key_unset", CredentialError, "TAO_BAD_INPUT_LLM_KEY", _llm_key_unset),
    Case("llm_without_endpoint", SettingsError, "automl_settings.llm_endpoint", _llm(llm_endpoint=None)),
    Case("llm_without_model", SettingsError, "automl_settings.llm_model", _llm(llm_model=None)),
    Case("llm_endpoint_not_a_url", SettingsError, "key 'base_url' (llm_endpoint), value 'localhost:8000'",
         _llm(llm_endpoint=None, base_url="localhost:8000")),
    Case("llm_temperature_out_of_range", SettingsError, "expected a number from 0 to 2", _llm(llm_temperature=3)),
    Case("llm_fallback_unknown", SettingsError, "'bayesian'", _llm(llm_fallback="bayesian")),
    Case("llm_setting_without_llm", SettingsError, "does not apply to algorithm 'bayesian'",
         _settings(llm_model="meta/llama-3.1-8b-instruct")),
    Case("hybrid_without_endpoint", SettingsError, "algorithm 'hybrid' needs an endpoint",
         _llm("hybrid", llm_endpoint=None)),
    Case("hybrid_llm_fallback", SettingsError, "does not apply to algorithm 'hybrid'",
         _llm("hybrid", llm_fallback="random")),
    Case("autoresearch_repeats_exceed_budget", SettingsError, "leaves no trial for a change",
         _llm("autoresearch", max_recommendations=3, autoresearch_repeats=2)),
    Case("autoresearch_margin_and_repeats", SettingsError, "autoresearch_repeats measures the noise margin",
         _llm("autoresearch", autoresearch_noise_margin=0.05, autoresearch_repeats=2)),
    Case("research_program_with_llm", SettingsError, "does not apply to algorithm 'llm'",
         _llm(research_program="lower the loss")),
    Case("research_program_with_bayesian", SettingsError, "does not apply to algorithm 'bayesian'",
         _settings(research_program="lower the loss")),
    # multi-objective (issue 18)
    Case("objectives_not_a_list", SettingsError, "'val_loss'", _settings(objectives="val_loss")),
    Case("objective_weight_negative", SettingsError, "objectives[0].weight",
         _settings(objectives=[{"metric": "val_loss", "weight": -1}, "latency_ms"])),
    Case("objective_direction_unknown", SettingsError, "objectives[1].direction",
         _settings(objectives=["val_loss", {"metric": "latency_ms", "direction": "down"}])),
    Case("objective_duplicate", SettingsError, "each metric once", _settings(objectives=["val_loss", "val_loss"])),
    Case("objective_kpi", SettingsError, "objectives[1].metric", _settings(objectives=["val_loss", "kpi"])),
    Case("latency_key_without_switch", SettingsError, "latency_weight", _settings(latency_weight=2)),
    Case("select_best_not_an_objective", SettingsError, "select_best.maximize",
         _settings(objectives=["val_loss", "latency_ms"], select_best={"maximize": "accuracy"})),
    Case("select_best_constraint_unparsable", SettingsError, "select_best.subject_to[0]",
         _settings(objectives=["val_loss", "latency_ms"],
                   select_best={"minimize": "val_loss", "subject_to": ["latency_ms <= 2*10"]})),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(case: Case, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ctx = Ctx(tmp_path, monkeypatch, case.source)
    run_kwargs = case.setup(ctx) or {}
    assert_rejected(ctx, case.error, case.excerpt, run_kwargs, runner_kwargs=case.extra.get("runner"))


def test_catalogue_size() -> None:
    assert len({c.id for c in CASES}) == len(CASES) >= 40


# -- cases that need more than a table row -------------------------------------------

def test_resume_unknown_session(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ctx = Ctx(tmp_path, monkeypatch)
    (ctx.ws / "automl-old").mkdir(parents=True)
    (ctx.ws / "automl-old" / "settings.json").write_text("{}")
    assert_rejected(ctx, WorkspaceError, "automl-nope",
                    {"resume": True, "automl_settings": {**BASE_SETTINGS, "session_id": "automl-nope"}})


def test_resume_with_another_search_space(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A resume continues the saved search_space.json: hyperparameters or ranges given
    again must describe that same space, never be silently replaced by it."""
    from tao_automl.runner import AutoMLRunner, _same_space_on_resume

    ctx = Ctx(tmp_path, monkeypatch)
    r = AutoMLRunner(skill_dir=ctx.skill, workspace_dir=ctx.ws)
    saved = r._prepare(r._normalize({"automl_settings": dict(BASE_SETTINGS)})).space
    exp = ctx.ws / "automl-old"
    exp.mkdir(parents=True)
    (exp / "settings.json").write_text(json.dumps({"created": 1, "settings": dict(BASE_SETTINGS)}))
    (exp / "search_space.json").write_text(json.dumps(saved.to_dict()))
    resume = {"resume": True, "automl_settings": {**BASE_SETTINGS, "session_id": "automl-old"}}
    exc = assert_rejected(ctx, SettingsError, "search_space.json", {**resume, "automl_hyperparameters": ["train.lr"]})
    assert exc.key == "automl_hyperparameters"
    exc = assert_rejected(ctx, SettingsError, "search_space.json",
                          {**resume, "custom_param_ranges": {"train.lr": {"valid_min": 0.01, "valid_max": 0.02}}})
    assert exc.key == "custom_param_ranges" and "train.lr" in str(exc)
    # the same space given again is accepted
    same = r._prepare(r._normalize({"automl_settings": dict(BASE_SETTINGS),
                                    "automl_hyperparameters": saved.names})).space
    _same_space_on_resume(saved, same, str(exp))


def test_new_run_over_existing_session(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ctx = Ctx(tmp_path, monkeypatch)
    (ctx.ws / "automl-taken").mkdir(parents=True)
    (ctx.ws / "automl-taken" / "settings.json").write_text("{}")
    assert_rejected(ctx, WorkspaceError, "automl-taken",
                    {"automl_settings": {**BASE_SETTINGS, "session_id": "automl-taken"}})


def test_resume_while_another_driver_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import socket
    import subprocess
    import sys
    import time

    ctx = Ctx(tmp_path, monkeypatch)
    exp = ctx.ws / "automl-busy"
    exp.mkdir(parents=True)
    (exp / "settings.json").write_text(json.dumps({"created": 1, "settings": BASE_SETTINGS}))
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])  # a live driver
    try:
        lease = {"owner": "o", "host": socket.gethostname(), "pid": holder.pid, "refreshed": time.time(),
                 "ttl_s": 30.0, "released": False}
        (exp / "driver.lease").write_text(json.dumps(lease))
        exc = assert_rejected(ctx, WorkspaceError, f"pid {holder.pid}",
                              {"resume": True, "automl_settings": {"session_id": "automl-busy"}})
        assert "in use by another driver" in str(exc) and str(exp / "driver.lease") in str(exc)
        assert json.loads((exp / "driver.lease").read_text()) == lease
        assert sorted(os.listdir(exp)) == ["driver.lease", "settings.json"]
    finally:
        holder.kill()
        holder.wait()


def test_workspace_is_a_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ctx = Ctx(tmp_path, monkeypatch)
    ctx.ws = tmp_path / "ws-file"
    ctx.ws.write_text("not a folder")
    assert_rejected(ctx, WorkspaceError, "ws-file", {})


def test_s3_dataset_uri_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, s3_server) -> None:
    ctx = Ctx(tmp_path, monkeypatch)
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_server.endpoint)
    uri = f"s3://{s3_server.bucket}/data/no-such-train.npz"
    assert_rejected(ctx, PreflightError, uri, {"train_dataset_uri": uri})


def test_s3_dataset_bucket_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, s3_server) -> None:
    ctx = Ctx(tmp_path, monkeypatch)
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_server.endpoint)
    uri = "s3://no-such-bucket-7/train.npz"
    assert_rejected(ctx, PreflightError, uri, {"train_dataset_uri": uri})


@pytest.mark.parametrize("bad", ["sEcReT-value-1234", "lower case", "", "1ABC"])
def test_secret_bad_name_never_echoed(bad: str) -> None:
    """secret() takes an env var NAME; a wrong string may be the secret itself,
    so the error names the problem and the length, never the string."""
    from tao_automl import secret

    with pytest.raises(SpecError) as info:
        secret(bad)
    assert "secret" in str(info.value) and f"length {len(bad)}" in str(info.value)
    if bad:
        assert bad not in str(info.value)


def test_plan_platform_is_named_as_in_the_plan(tmp_path: Path) -> None:
    """A CLI plan says ``platform:``; its error names that key, not platform_sdk."""
    from tao_automl.cli.plan import runner_for

    with pytest.raises(SettingsError) as ei:
        runner_for({"skill_dir": str(TOY), "platform": "slurmm", "workspace_dir": str(tmp_path)}).review(
            automl_settings=dict(BASE_SETTINGS), spec_overrides={"train.num_epochs": 2})
    assert ei.value.key == "platform" and "key 'platform', value 'slurmm'" in str(ei.value)
