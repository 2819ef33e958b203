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
from pathlib import Path

import pytest
from skillkit import REPO, TOY, make_skill  # noqa: F401  (re-exported for tests)


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


@pytest.fixture
def python_exe() -> str:
    return sys.executable


@pytest.fixture(autouse=True)
def _no_wandb(monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "disabled")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
