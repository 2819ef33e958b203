"""The example model skill really trains: metrics, checkpoints, resume, evaluate."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from tao_automl.execution.checkpoints import select_checkpoint
from tao_automl.execution.metrics import extract_metric

SKILL = Path(__file__).resolve().parents[2] / "examples" / "toy_skill"


def _template(action: str) -> dict:
    return yaml.safe_load((SKILL / "references" / f"spec_template_{action}.yaml").read_text())


def run_action(
    tmp_path: Path, action: str, results: Path, **sections
) -> subprocess.CompletedProcess:
    spec = _template(action)
    spec["results_dir"] = str(results)
    for sec, values in sections.items():
        spec.setdefault(sec, {}).update(values)
    spec_path = tmp_path / f"{action}-{results.name}.yaml"
    spec_path.write_text(yaml.safe_dump(spec))
    script = "scripts/train.py" if action == "train" else "scripts/evaluate.py"
    proc = subprocess.run(
        [sys.executable, script, "--config", str(spec_path)],
        cwd=SKILL,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return proc


def train(tmp_path, name, **train_values):
    results = tmp_path / name
    proc = run_action(tmp_path, "train", results, train=train_values)
    assert proc.returncode == 0, proc.stderr
    return results, proc.stdout


def test_train_three_epochs(tmp_path):
    results, out = train(tmp_path, "run", num_epochs=3)
    r = extract_metric("val_loss", logs=out)
    assert r.source == "tagged"
    assert [e.epoch for e in r.per_epoch] == [1, 2, 3]
    for e in r.per_epoch:
        assert set(e.values) >= {"val_loss", "val_accuracy", "train_loss"}
    assert r.value == r.per_epoch[-1].values["val_loss"]
    assert r.per_epoch[-1].values["val_loss"] < r.per_epoch[0].values["val_loss"]

    files = sorted(p.name for p in results.iterdir())
    ckpts = [f for f in files if f.startswith("model_epoch_")]
    assert ckpts == [
        "model_epoch_001_step_00018.pth",
        "model_epoch_002_step_00036.pth",
        "model_epoch_003_step_00054.pth",
    ]
    link = results / "model_latest.pth"
    assert link.is_symlink() and os.readlink(link) == ckpts[-1]
    with np.load(results / ckpts[0], allow_pickle=False) as z:  # pickle-free format
        assert int(z["epoch"]) == 1 and int(z["step"]) == 18

    # TAO status.json gives the same per-epoch values
    status = extract_metric(
        "val_loss", artifacts={"status.json": (results / "status.json").read_bytes()}
    )
    assert status.source == "status.json"
    assert [e.values["val_loss"] for e in status.per_epoch] == [
        e.values["val_loss"] for e in r.per_epoch
    ]
    lines = [json.loads(x) for x in (results / "status.json").read_text().splitlines()]
    assert lines[0]["status"] == "STARTED" and lines[-1]["status"] == "SUCCESS"
    assert lines[1]["max_epoch"] == 3 and "kpi" in lines[1]

    # the resolver picks epoch files, never the link unless asked
    assert select_checkpoint(files) == ckpts[-1]
    assert select_checkpoint(files, which="latest") == "model_latest.pth"
    best = select_checkpoint(
        files, which="best", per_epoch=r.per_epoch, metric="val_loss", direction="minimize"
    )
    assert best in ckpts


def test_checkpoint_interval(tmp_path):
    results, _ = train(tmp_path, "interval", num_epochs=5, checkpoint_interval=2)
    epochs = sorted(int(p.name[12:15]) for p in results.glob("model_epoch_*.pth"))
    assert epochs == [2, 4, 5]


def test_resume_equals_uninterrupted(tmp_path):
    full, full_out = train(tmp_path, "full", num_epochs=4)
    part, _ = train(tmp_path, "part", num_epochs=2)
    ckpt = part / "model_epoch_002_step_00036.pth"
    resumed, resumed_out = train(
        tmp_path, "part", num_epochs=4, resume_training_checkpoint_path=str(ckpt)
    )
    assert "Resuming training from" in resumed_out
    got = extract_metric("val_loss", logs=resumed_out)
    want = extract_metric("val_loss", logs=full_out)
    assert [e.epoch for e in got.per_epoch] == [3, 4]
    assert got.value == pytest.approx(want.value, rel=1e-12)
    with (
        np.load(full / "model_epoch_004_step_00072.pth") as a,
        np.load(part / "model_epoch_004_step_00072.pth") as b,
    ):
        for key in ("w1", "b1", "w2", "b2"):
            np.testing.assert_allclose(a[key], b[key], rtol=1e-12, atol=1e-12)
    assert os.readlink(part / "model_latest.pth") == "model_epoch_004_step_00072.pth"


def test_evaluate_action(tmp_path):
    results, out = train(tmp_path, "train", num_epochs=3)
    trained = extract_metric("val_loss", logs=out)
    ckpt = results / select_checkpoint(os.listdir(results))
    ev_dir = tmp_path / "eval"
    proc = run_action(tmp_path, "evaluate", ev_dir, evaluate={"checkpoint": str(ckpt)})
    assert proc.returncode == 0, proc.stderr
    ev = extract_metric("val_loss", logs=proc.stdout)
    assert ev.source == "tagged"
    assert ev.value == pytest.approx(trained.value, rel=1e-12)
    res = json.loads((ev_dir / "results.json").read_text())
    assert res["val_loss"] == pytest.approx(trained.value, rel=1e-12)
    assert 0.0 <= res["val_accuracy"] <= 1.0 and res["checkpoint_epoch"] == 3
    from_file = extract_metric(
        "val_accuracy", artifacts={"results.json": (ev_dir / "results.json").read_bytes()}
    )
    assert from_file.source == "results.json"


def test_evaluate_missing_checkpoint_fails_clearly(tmp_path):
    proc = run_action(
        tmp_path, "evaluate", tmp_path / "e", evaluate={"checkpoint": str(tmp_path / "nope.pth")}
    )
    assert proc.returncode != 0
    assert "nope.pth" in proc.stderr and "does not exist" in proc.stderr


def test_hyperparameters_matter(tmp_path):
    def final(name, lr):
        _, out = train(tmp_path, name, num_epochs=5, lr=lr)
        return extract_metric("val_loss", logs=out).value

    low, good, high = final("low", 1e-4), final("good", 0.02), final("high", 1.0)
    assert good < low  # too low a rate underfits
    assert good < high  # too high a rate diverges
    assert high > 2 * good


def test_bad_spec_value_is_reported(tmp_path):
    proc = run_action(
        tmp_path, "train", tmp_path / "bad", model={"activation": "swish"}, train={"num_epochs": 1}
    )
    assert proc.returncode != 0
    assert "model.activation" in proc.stderr and "swish" in proc.stderr


def test_skill_loads_and_schema_gates():
    from tao_automl.skill import load_skill

    bundle = load_skill(SKILL)
    assert bundle.info.automl_enabled is True
    assert (bundle.info.metric, bundle.info.metric_direction) == ("val_loss", "minimize")
    train_action = bundle.action("train")
    assert train_action.execution.type == "python_script"
    assert (SKILL / train_action.execution.script).is_file()
    schema = bundle.schema("train")
    assert "train.lr" in schema.default_parameters
    assert schema.params["model.hidden_size"].math_cond == "^ 2"
    assert bundle.schema("evaluate").params["evaluate.checkpoint"].kind == "string"
