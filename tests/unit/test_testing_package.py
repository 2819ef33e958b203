"""tao_automl.testing: importable without pytest; the objective skill's job
computes what ``tao_automl.testing.algorithm.objective`` says, checkpoints
every epoch, resumes, and its evaluate action reports a checkpoint's value."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tao_automl.testing import OBJECTIVE_SKILL
from tao_automl.testing.algorithm import objective

SCRIPT = OBJECTIVE_SKILL / "scripts" / "objective.py"


def test_package_and_runner_import_without_pytest():
    code = "import sys, tao_automl.testing, tao_automl.runner; print('pytest' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    assert out.stdout.strip() == "False"


def _run(action, spec, tmp_path):
    cfg = tmp_path / f"{action}.json"
    cfg.write_text(json.dumps(spec))
    res = subprocess.run([sys.executable, str(SCRIPT), action, str(cfg)], capture_output=True, text=True,
                         check=True, cwd=tmp_path)
    return [json.loads(line.split(" ", 1)[1]) for line in res.stdout.splitlines()
            if line.startswith("[tao-automl-metric] ")]


def test_objective_job_train_resume_evaluate(tmp_path):
    hp = {"train.lr": 0.05, "train.momentum": 0.3, "model.depth": 1}
    train = {"lr": 0.05, "momentum": 0.3, "num_epochs": 2, "resume_training_checkpoint_path": ""}
    out = tmp_path / "a"
    rows = _run("train", {"results_dir": str(out), "model": {"depth": 1}, "train": train}, tmp_path)
    assert [r["epoch"] for r in rows] == [1, 2]
    assert [r["val_loss"] for r in rows] == pytest.approx([objective(hp, 1), objective(hp, 2)])
    assert objective(hp, 2) < objective(hp, 1)
    assert sorted(p.name for p in out.iterdir()) == ["model_epoch_001.pth", "model_epoch_002.pth"]
    # resume from epoch 2 runs epochs 3..4 only
    resumed = _run("train", {"results_dir": str(tmp_path / "b"), "model": {"depth": 1},
                             "train": {**train, "num_epochs": 4,
                                       "resume_training_checkpoint_path": str(out / "model_epoch_002.pth")}},
                   tmp_path)
    assert [r["epoch"] for r in resumed] == [3, 4]
    (value,) = _run("evaluate", {"results_dir": str(tmp_path / "e"),
                                 "evaluate": {"checkpoint": str(out / "model_epoch_001.pth")}}, tmp_path)
    assert value["val_loss"] == pytest.approx(objective(hp, 1))
    assert json.loads((tmp_path / "e" / "results.json").read_text())["val_loss"] == value["val_loss"]
    # the optimum: lr 0.01, momentum 0.5, depth 0
    assert objective({"train.lr": 0.01, "train.momentum": 0.5, "model.depth": 0}, 4) == pytest.approx(0.25)
