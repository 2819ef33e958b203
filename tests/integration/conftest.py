"""Shared fixtures for the runner's integration tests.

``ray_cluster`` starts ONE local Ray cluster per test session (a few seconds
instead of a few seconds per run).  The runner joins it: ``RaySession`` sees
a cluster it did not start, splits its ``tao_automl_slot`` resources so that
``max_concurrent`` trials fit at once, and leaves it running.
Tests that need a driver process of their own (crash, resume, signals) run
a subprocess instead.
"""

from __future__ import annotations

import os
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
TOY = REPO / "examples" / "toy_skill"


def start_shared_ray() -> None:
    """Idempotent: start the shared test cluster unless one is running."""
    from tao_automl.execution.ray_session import quiet_ray_env

    quiet_ray_env()
    import ray

    if not ray.is_initialized():
        ray.init(num_cpus=2, resources={"tao_automl_slot": 8}, include_dashboard=False,
                 log_to_driver=False, logging_level="ERROR")


@pytest.fixture(scope="session")
def ray_cluster():
    start_shared_ray()
    import ray

    yield ray
    ray.shutdown()


@pytest.fixture
def toy_skill() -> Path:
    return TOY


def make_skill(root: Path, train_body: str, *, eval_body: str | None = None, metric: str = "val_loss",
               credentials: tuple[str, ...] = ()) -> Path:
    """A tiny custom skill in ``root`` whose train script is ``train_body``
    (Python; gets ``spec`` (dict), ``results_dir`` and ``emit(**values)``)."""
    (root / "references").mkdir(parents=True, exist_ok=True)
    (root / "schemas").mkdir(exist_ok=True)
    (root / "scripts").mkdir(exist_ok=True)
    import yaml

    def execution(script: str) -> dict:
        return {"type": "python_script", "script": f"scripts/{script}", "args": ["--config", "{config_path}"]}

    evaluate = eval_body is not None
    actions = {"train": {"config_format": "yaml", "execution": execution("train.py"), "metric": metric,
                         "metric_direction": "minimize"}}
    templates = {"train": "../references/spec_template_train.yaml"}
    if evaluate:
        actions["evaluate"] = {"config_format": "yaml", "execution": execution("evaluate.py"), "metric": metric}
        templates["evaluate"] = "../references/spec_template_train.yaml"
    info = {
        "name": f"tiny-{root.name}", "network_arch": "tiny", "automl_enabled": True,
        "metric": metric, "metric_direction": "minimize", "actions": actions,
        "spec_params": {"train": {"results_dir": "output_dir"}},
        "spec_shorthand_keys": {"num_epochs": "train.num_epochs"},
        "spec_templates": templates,
        "required_credentials": list(credentials),
    }
    (root / "references" / "skill_info.yaml").write_text(yaml.safe_dump(info, sort_keys=False))
    (root / "references" / "spec_template_train.yaml").write_text(
        "results_dir: ./out\ntrain:\n  num_epochs: 2\n  lr: 0.1\n  mode: ok\n")
    schema = {
        "type": "object",
        "properties": {
            "results_dir": {"type": "string"},
            "train": {"type": "object", "properties": {
                "num_epochs": {"type": "integer", "default": 2, "minimum": 1, "maximum": 10},
                "lr": {"type": "number", "default": 0.1, "minimum": 0.001, "maximum": 1.0,
                       "automl_enabled": True},
                "mode": {"type": "string", "default": "ok"},
            }},
        },
        "automl_default_parameters": ["train.lr"],
    }
    import json

    (root / "schemas" / "train.schema.json").write_text(json.dumps(schema))
    if evaluate:
        (root / "schemas" / "evaluate.schema.json").write_text(json.dumps(schema))
    header = textwrap.dedent("""\
        import json, os, sys, time
        import yaml
        spec = yaml.safe_load(open(sys.argv[sys.argv.index("--config") + 1]))
        results_dir = spec.get("results_dir") or "."
        os.makedirs(results_dir, exist_ok=True)
        def emit(**values):
            print("[tao-automl-metric] " + json.dumps(values), flush=True)
        """)
    (root / "scripts" / "train.py").write_text(header + textwrap.dedent(train_body))
    if evaluate:
        (root / "scripts" / "evaluate.py").write_text(header + textwrap.dedent(eval_body))
    return root


@pytest.fixture
def python_exe() -> str:
    return sys.executable


@pytest.fixture(autouse=True)
def _no_wandb(monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "disabled")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
