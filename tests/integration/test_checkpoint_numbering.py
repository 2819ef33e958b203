"""Checkpoints numbered from epoch 0 (TAO PyTorch) hand over the right weights.

The toy job with ``train.checkpoint_first_epoch: 0`` names the checkpoint of
the epoch it reports as 1 ``model_epoch_000_...`` (its content holds the true
epoch count, like TAO's).  Every paused-and-resumed Hyperband attempt must
start from the checkpoint of exactly the epoch it was credited with, and the
final best checkpoint must be the best epoch's, not the one after it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from skillkit import TOY

from tao_automl.runner import AutoMLRunner
from tao_automl.store.ledger import JobLedger
from tao_automl.store.workspace import Workspace

SETTINGS = {"max_recommendations": 6, "max_concurrent": 2, "max_epochs": 4, "reduction_factor": 2, "seed": 3,
            "baseline": False, "final_eval": False}


def _epoch_inside(path: str) -> int:
    with np.load(path, allow_pickle=False) as d:
        return int(d["epoch"])


@pytest.mark.parametrize("first", [0, 1])
def test_resumed_attempts_start_from_the_credited_epoch(first: int, ray_cluster, tmp_path: Path) -> None:
    res = AutoMLRunner(skill_dir=TOY, workspace_dir=tmp_path).run(
        automl_algorithm="hyperband", automl_settings=SETTINGS,
        spec_overrides={"train.epoch_sleep_s": 0.1, "train.checkpoint_first_epoch": first})
    resumed = 0
    for rec in JobLedger(Workspace(res["workspace"])).trials():
        for att in rec.attempts:
            if att.resume_from:
                resumed += 1
                name_epoch = int(Path(att.resume_from).name.split("_")[2])
                assert name_epoch == att.start_epoch - 1 + first
                assert _epoch_inside(att.resume_from) == att.start_epoch
    assert resumed >= 1, "hyperband paused and resumed no trial"
    best = res["best"]
    assert best["checkpoint"] and Path(best["checkpoint"]).exists()
    trial = next(t for t in res["history"] if t["rec_id"] == best["rec_id"])
    # the best trial's score is its best epoch (possibly trained by an earlier,
    # paused attempt): the checkpoint holds exactly that epoch's weights
    assert best["metric_epoch"] is not None
    assert any(e["epoch"] == best["metric_epoch"] and e["val_loss"] == pytest.approx(best["metric_value"])
               for e in trial["metrics_per_epoch"])
    assert _epoch_inside(best["checkpoint"]) == best["metric_epoch"]
