"""The package's shape (docs/architecture.md): downward imports, a light
facade import, a frozen typed run plan."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import attrs
import pytest

from tao_automl.planning.plan import JobOptions, RunPlan
from tao_automl.search import SearchSpace

REPO = Path(__file__).resolve().parents[2]
TOY = REPO / "examples" / "toy_skill"
BASE = {"max_recommendations": 2, "seed": 0, "baseline": False, "final_eval": False}


def test_imports_point_only_downward():
    """The [tool.importlinter] layers contract holds (every import, local ones too)."""
    pytest.importorskip("importlinter")
    lint = Path(sys.executable).with_name("lint-imports")
    cmd = [str(lint)] if lint.exists() else [sys.executable, "-m", "importlinter.cli"]
    out = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, env={"PYTHONPATH": str(REPO)})
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    assert "1 kept, 0 broken" in out.stdout


def test_facade_import_loads_no_run_machinery():
    code = ("import sys; from tao_automl.runner import AutoMLRunner; "
            "print(sorted(m for m in ('ray', 'wandb', 'optuna', 'tao_automl.execution', "
            "'tao_automl.planning', 'tao_automl.reporting') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
    assert out.stdout.strip() == "[]"


def _plan(tmp_path: Path) -> RunPlan:
    from tao_automl.runner import AutoMLRunner

    skill = tmp_path / "skill"
    shutil.copytree(TOY, skill)
    runner = AutoMLRunner(skill_dir=skill, workspace_dir=tmp_path / "ws")
    return runner._prepare({
        "automl_algorithm": "random", "automl_settings": dict(BASE),
        "spec_overrides": {"train.num_epochs": 2}, "automl_hyperparameters": None,
        "custom_param_ranges": None, "train_dataset_uri": None, "eval_dataset_uri": None,
        "dataset_uris": None, "base_checkpoint": None, "platform_kwargs": {}})


def test_run_plan_is_frozen_and_typed(tmp_path):
    plan = _plan(tmp_path)
    assert type(plan) is RunPlan
    assert isinstance(plan.space, SearchSpace) and isinstance(plan.job_options, JobOptions)
    assert isinstance(plan.blockers, tuple) and isinstance(plan.notes, tuple)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        plan.space = plan.space  # type: ignore[misc]
    # a resume replaces the space the way runner.run does: a new plan, the old one unchanged
    saved = SearchSpace.from_dict(plan.space.to_dict())
    resumed = attrs.evolve(plan, space=saved)
    assert resumed.space is saved and plan.space is not saved
    assert resumed.metric == plan.metric and resumed.settings is plan.settings
