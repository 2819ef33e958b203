"""Issue 12: hangs, resource exhaustion and silent wrong answers.

Bounded YAML loading (alias bombs, depth, recursion, size, UTF-8), bounded
settings and finite estimates, strict JSON in the workspace, metric names
matched literally or by the alias rule only, deep schemas, and absurd epochs
reported by a real job.
"""

from __future__ import annotations

import json
import math
import re
import shutil
import time
from pathlib import Path

import pytest
import yaml

from tao_automl.config import safe_yaml
from tao_automl.errors import SchemaGateError
from tao_automl.execution.metrics import extract_metric

REPO = Path(__file__).resolve().parents[2]
TOY = REPO / "examples" / "toy_skill"
BASE = {"max_recommendations": 2, "seed": 0, "baseline": False, "final_eval": False}


def bomb(levels: int = 9, width: int = 9) -> str:
    """The "billion laughs" document: ``width**levels`` nodes once expanded."""
    names = [f"l{i}" for i in range(levels)]
    text = f"{names[0]}: &{names[0]} [{', '.join(['x'] * width)}]\n"
    for prev, name in zip(names, names[1:], strict=False):
        text += f"{name}: &{name} [{', '.join(['*' + prev] * width)}]\n"
    return text


# -- the one YAML loader ---------------------------------------------------------------

def test_alias_bomb_is_refused_at_once() -> None:
    t0 = time.monotonic()
    with pytest.raises(safe_yaml.YAMLLimitError, match="alias bomb"):
        safe_yaml.safe_load(bomb())
    assert time.monotonic() - t0 < 2.0
    assert isinstance(safe_yaml.YAMLLimitError("x"), yaml.YAMLError)  # callers' "does not parse" path


def test_shared_aliases_below_the_bound_still_load() -> None:
    data = safe_yaml.safe_load("base: &b {lr: 0.1, bs: 8}\ntrain: *b\nlist: [*b, *b]\n")
    assert data == {"base": {"lr": 0.1, "bs": 8}, "train": {"lr": 0.1, "bs": 8},
                    "list": [{"lr": 0.1, "bs": 8}] * 2}
    assert safe_yaml.safe_load(bomb(levels=3, width=9))["l2"][0][0] == ["x"] * 9  # 729 leaves: fine
    assert safe_yaml.safe_load("") is None and safe_yaml.safe_load("# only a comment\n") is None


def test_recursive_deep_large_and_binary_yaml_are_refused() -> None:
    with pytest.raises(safe_yaml.YAMLLimitError, match="recursive"):
        safe_yaml.safe_load("&a [*a]\n")
    with pytest.raises(safe_yaml.YAMLLimitError, match="deeper"):
        safe_yaml.safe_load("[" * 5000 + "]" * 5000)
    with pytest.raises(safe_yaml.YAMLLimitError, match="too large"):
        safe_yaml.safe_load("a: " + "x" * (safe_yaml.MAX_BYTES + 1))
    with pytest.raises(safe_yaml.YAMLLimitError, match=r"not UTF-8 text: byte 0xff at offset 3"):
        safe_yaml.safe_load(b"a: \xff\n")


def test_every_yaml_load_in_the_package_goes_through_the_helper() -> None:
    offenders = []
    for path in (REPO / "tao_automl").rglob("*.py"):
        if path.name == "safe_yaml.py":
            continue
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if re.search(r"\byaml\.(safe_load|load|full_load|unsafe_load|load_all|safe_load_all)\(", line):
                offenders.append(f"{path.relative_to(REPO)}:{n}: {line.strip()}")
    assert not offenders, offenders


def test_versions_file_alias_bomb_is_a_skill_error(tmp_path: Path) -> None:
    from tao_automl.errors import SkillError
    from tao_automl.skill.versions import lookup_key

    vf = tmp_path / "versions.yaml"
    vf.write_text(bomb())
    with pytest.raises(SkillError, match="versions file does not parse.*alias bomb"):
        lookup_key(vf, "images.x")


# -- settings, estimates, strict JSON -------------------------------------------------

def test_every_numeric_setting_has_a_finite_range() -> None:
    import attrs

    from tao_automl.config.settings import (
        MEASURED,
        RANGES,
        AutoMLSettings,
        _type_name,
        parse_settings,
    )
    from tao_automl.errors import SettingsError

    numeric = [a.name for a in attrs.fields(AutoMLSettings)
               if _type_name(a.type).split(" ")[0] in ("int", "float")]
    assert sorted(numeric) == sorted([*RANGES, *MEASURED])
    for key in MEASURED:  # measured values have no range, but are finite
        with pytest.raises(SettingsError, match=key):
            parse_settings({key: float("nan")})
    for lo, hi, _ in RANGES.values():
        assert math.isfinite(lo) and math.isfinite(hi) and lo < hi


@pytest.mark.parametrize("key", ["seed", "estimate_trial_s", "max_recommendations", "poll_interval_s"])
@pytest.mark.parametrize("value", [10**400, float("inf"), float("nan"), -1])
def test_out_of_range_settings_name_key_value_and_range(key: str, value: float) -> None:
    from tao_automl.config.settings import parse_settings, range_text
    from tao_automl.errors import SettingsError

    with pytest.raises(SettingsError) as info:
        parse_settings({key: value})
    msg = str(info.value)
    int_key = key in ("seed", "max_recommendations")
    expected = "expected an integer" if int_key and isinstance(value, float) else range_text(key)
    assert f"key '{key}'" in msg and expected in msg, msg


def test_review_estimate_counts_at_least_one_full_trial(tmp_path: Path) -> None:
    from tao_automl.runner import AutoMLRunner

    runner = AutoMLRunner(skill_dir=TOY, workspace_dir=tmp_path / "ws")
    review = runner.review(automl_settings={**BASE, "max_recommendations": 1, "max_concurrent": 1024,
                                            "estimate_trial_s": 100.0})
    assert review["estimate"]["total_s"] >= 100.0
    asha = runner.review(automl_algorithm="asha",
                         automl_settings={**BASE, "max_recommendations": 1, "max_epochs": 4,
                                          "reduction_factor": 100, "estimate_trial_s": 100.0})
    assert asha["estimate"]["full_trial_equivalents"] >= 1.0 and asha["estimate"]["total_s"] >= 100.0
    text = json.dumps(asha, default=str, allow_nan=False)  # finite everywhere
    assert "NaN" not in text and "Infinity" not in text


def test_workspace_json_is_strict(tmp_path: Path) -> None:
    from tao_automl.store.workspace import Workspace, dumps_strict

    ws = Workspace(tmp_path / "ws")
    ws.write_json("result.json", {"metric_value": float("nan"), "best": [1.5, float("inf"), -float("inf")],
                                  "nested": {"t": (1, float("nan"))}})
    raw = (tmp_path / "ws" / "result.json").read_text()
    assert "NaN" not in raw and "Infinity" not in raw
    assert json.loads(raw) == {"metric_value": None, "best": [1.5, None, None], "nested": {"t": [1, None]}}
    assert dumps_strict({"x": float("nan")}) == '{"x": null}'


# -- metric names -------------------------------------------------------------------

LOGS = ('[tao-automl-metric] {"epoch": 1, "val_loss": 0.5, "train_loss": 0.7}\n'
        "Epoch 2: val_loss: 0.4 train_loss=0.6 lr 0.01\n")


@pytest.mark.parametrize("name", ["((", ".*", "", "[", "+"])
def test_a_name_without_letters_never_binds_to_another_metric(name: str) -> None:
    result = extract_metric(name, logs=LOGS)
    assert result.value is None
    assert f"metric {name!r} not found" in result.notes[-1]
    assert "train_loss, val_loss" in result.notes[-1]  # what the job did report


def test_metric_names_match_literally_or_by_the_alias_rule() -> None:
    assert extract_metric("val_loss", logs=LOGS).value == 0.5  # tagged wins over the log
    assert extract_metric("Validation Loss", logs=LOGS).value == 0.5  # alias rule
    assert extract_metric("val_loss", logs="val_loss: 0.25\n").value == 0.25
    assert extract_metric("loss", logs=LOGS).value is None  # never part of another name
    assert extract_metric("val.*", logs="val_acc: 0.9\n").value is None  # escaped, not a pattern
    assert extract_metric("((", logs='[tao-automl-metric] {"epoch": 1, "((": 3.0}\n').value == 3.0


# -- schemas ---------------------------------------------------------------------------

def test_schema_deeper_than_the_bound_is_refused_and_packaged_infinity_loads(tmp_path: Path) -> None:
    from tao_automl.schema import load_schema
    from tao_automl.schema.parse import MAX_SCHEMA_DEPTH

    depth = MAX_SCHEMA_DEPTH + 5  # below Python's recursion limit: the walk's own bound
    path = tmp_path / "deep.schema.json"
    path.write_text('{"properties": ' + '{"a": {"properties": ' * depth + "{}" + "}}" * depth + "}")
    with pytest.raises(SchemaGateError, match="nested too deeply"):
        load_schema(path)
    ok = tmp_path / "ok.schema.json"
    ok.write_text('{"properties": {"lr": {"type": "float", "minimum": -Infinity, "maximum": Infinity,'
                  ' "default": 0.1}}}')
    p = load_schema(ok).params["lr"]
    assert p.finite_minimum is None and p.finite_maximum is None  # unbounded on both sides
    reid = load_schema(REPO / "skills" / "tao-train-reid" / "schemas" / "train.schema.json")
    assert any(p.maximum == math.inf for p in reid.params.values())


@pytest.mark.parametrize("bound", ['"maximum": -Infinity', '"maximum": NaN', '"minimum": [1, NaN]',
                                   '"option_weights": [1, Infinity]'])
def test_unusable_schema_bounds_are_refused(tmp_path: Path, bound: str) -> None:
    from tao_automl.schema import load_schema

    path = tmp_path / "s.schema.json"
    path.write_text('{"properties": {"x": {"type": "float", "default": 1, ' + bound + "}}}")
    key = bound.split('"')[1]
    with pytest.raises(SchemaGateError, match=f"key 'x.{key}'"):
        load_schema(path)


# -- absurd epochs from a real job ----------------------------------------------------------

ABSURD_TRAIN = '''
import argparse, json, os, sys
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import toy_core as core
p = argparse.ArgumentParser(); p.add_argument("--config", "-e"); a = p.parse_args()
spec = core.load_spec(a.config)
tag = "[tao-automl-metric] "
for epoch in (1e30, -3, "NaN", 2.5, "x", True):
    print(tag + json.dumps({"epoch": epoch, "val_loss": 9.0}).replace('"NaN"', "NaN"), flush=True)
print(tag + json.dumps({"epoch": 1, "val_loss": 0.5}), flush=True)
print(tag + json.dumps({"epoch": 2, "val_loss": 0.4}), flush=True)
'''


def test_absurd_epochs_are_ignored_with_a_note(tmp_path: Path) -> None:
    from tao_automl.execution.trial import TrialPlan, run_trial
    from tao_automl.reporting.collect import trial_result
    from tao_automl.runner import AutoMLRunner
    from tao_automl.store.ledger import JobLedger
    from tao_automl.store.workspace import Workspace

    skill = tmp_path / "skill"
    shutil.copytree(TOY, skill)
    (skill / "scripts" / "train.py").write_text(ABSURD_TRAIN)
    runner = AutoMLRunner(skill_dir=skill, workspace_dir=tmp_path / "ws")
    prepared = runner._prepare({
        "automl_algorithm": "random", "automl_settings": {**BASE, "max_recommendations": 1},
        "spec_overrides": {"train.num_epochs": 2}, "automl_hyperparameters": None,
        "custom_param_ranges": None, "train_dataset_uri": None, "eval_dataset_uri": None,
        "dataset_uris": None, "base_checkpoint": None, "platform_kwargs": {}})
    ws = Workspace(tmp_path / "ws" / "s1")
    ws.makedirs()
    plan = TrialPlan(
        skill_dir=str(skill), action="train", space=prepared.space.to_dict(), overrides=prepared.overrides,
        dataset_uris=prepared.dataset_uris, base_checkpoint=None, metric="val_loss", mode="min",
        fidelity_key=prepared.fidelity_key, max_epochs=prepared.max_epochs, needs_checkpoints=False,
        multi_fidelity=False, workspace_root=ws.root, storage_options={}, job_root=ws.path("trials"),
        backend=prepared.backend_ref, job_options=prepared.job_options, poll_interval_s=0.05,
        session_id="s1", checkpoint_epoch_offset=None,
    )
    reports: list[dict] = []
    run_trial(plan, prepared.initial_points[0], "t0", lambda m, checkpoint=None: reports.append(m), None)

    epochs = [r["epoch"] for r in reports]
    assert epochs == sorted(epochs) and set(epochs) <= {1, 2}, reports  # only sane epochs are progress
    assert reports[-1]["val_loss"] == 0.4
    result = trial_result(JobLedger(ws).trial("t0"), "val_loss")
    assert result.status == "succeeded" and result.metric_value == 0.4
    assert result.epochs_completed == 2
    text = "\n".join(result.notes)
    for shown in ("1000000000000000019884624838656", "-3", "nan", "2.5", "'x'", "True"):
        assert shown in text, (shown, result.notes)
    assert all(n.startswith("ignored a tagged record") for n in result.notes)
