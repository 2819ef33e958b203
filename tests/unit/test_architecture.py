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


# Internal imports inside functions, each with its reason; any other one is a
# hidden dependency (docs/architecture.md: module-level imports everywhere).
LAZY_INTERNAL = {
    # the facade stays light: run machinery loads when run()/review() is called
    "runner.py": "*",
    # registry entries build their searchers on demand: those modules import
    # optuna / Ray Tune at module level, and import the registry back
    "algorithms/_builtin.py": {"tao_automl.algorithms._gp_sampler", "tao_automl.algorithms.dehb",
                               "tao_automl.algorithms._de"},
    "algorithms/dehb.py": {"tao_automl.algorithms", "tao_automl.algorithms._builtin"},
    "algorithms/llm/__init__.py": {"tao_automl.config.settings", "tao_automl.algorithms.llm.brain",
                                   "tao_automl.algorithms.llm.searcher", "tao_automl.algorithms.llm.hybrid",
                                   "tao_automl.algorithms.llm.autoresearch"},
}


def test_internal_imports_sit_at_module_level():
    import ast

    found = []
    for path in sorted((REPO / "tao_automl").rglob("*.py")):
        rel = path.relative_to(REPO / "tao_automl").as_posix()
        allowed = LAZY_INTERNAL.get(rel, set())
        for fn in ast.walk(ast.parse(path.read_text())):
            if not isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for node in ast.walk(fn):
                if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("tao_automl") \
                        and allowed != "*" and node.module not in allowed:
                    found.append(f"{rel}:{node.lineno} {node.module}")
    assert not found, "move these imports to module level (or name the reason in LAZY_INTERNAL):\n" + \
        "\n".join(found)


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
