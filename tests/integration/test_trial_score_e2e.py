"""One definition of a trial's score, end to end on the toy skill (local backend).

With a learning rate high enough that every trial's validation loss rises
again in its last epoch, ``checkpoint_selection: "best"`` must make the
result's ``best``/``progress``/``history``, the status table rebuilt from the
ledger, and the checkpoint the final evaluation measured all name the best
epoch; ``"last"`` must make all of them name the last epoch.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from skillkit import TOY

from tao_automl.checkpoints import parse_checkpoint_name
from tao_automl.progress import render_status, snapshot
from tao_automl.results import validate_result
from tao_automl.runner import AutoMLRunner
from tao_automl.workspace import Workspace

EPOCHS = 4


@pytest.mark.parametrize("selection", ["best", "last"])
def test_score_checkpoint_table_and_final_evaluation_agree(selection: str, ray_cluster, tmp_path: Path) -> None:
    res = AutoMLRunner(skill_dir=TOY, workspace_dir=tmp_path).run(
        automl_algorithm="random",
        automl_settings={"max_recommendations": 4, "max_concurrent": 2, "seed": 0,
                         "checkpoint_selection": selection},
        automl_hyperparameters=["train.lr"],
        custom_param_ranges={"train.lr": {"valid_min": 0.45, "valid_max": 0.7}},
        spec_overrides={"train.num_epochs": EPOCHS, "model.activation": "sigmoid"},
    )
    validate_result(res)
    hist = {t["rec_id"]: t for t in res["history"]}
    assert len(hist) == 4 and all(t["status"] == "succeeded" for t in hist.values())
    # the premise: some trial's best epoch is not its last
    curves = {rid: {e["epoch"]: e["val_loss"] for e in t["metrics_per_epoch"]} for rid, t in hist.items()}
    assert any(min(c, key=c.get) != EPOCHS for c in curves.values()), curves

    # history: each trial's score is its best (or last) epoch's value, and says which epoch
    for rid, t in hist.items():
        c = curves[rid]
        epoch = min(c, key=c.get) if selection == "best" else max(c)
        assert t["metric_epoch"] == epoch
        assert t["metric_value"] == pytest.approx(c[epoch])

    # best and progress: the best trial by that score
    best = res["best"]
    want = min(hist.values(), key=lambda t: t["metric_value"])
    assert best["rec_id"] == want["rec_id"] and res["progress"]["best_rec_id"] == want["rec_id"]
    assert best["metric_value"] == pytest.approx(want["metric_value"])
    assert res["progress"]["best_metric"] == pytest.approx(want["metric_value"])
    assert best["metric_epoch"] == want["metric_epoch"]
    if selection == "best":
        assert best["metric_epoch"] != EPOCHS  # every curve above rises in its last epoch

    # the checkpoint (and the one the final evaluation measured) is that epoch's
    ckpt = parse_checkpoint_name(Path(best["checkpoint"]).name)
    assert ckpt is not None and ckpt.epoch == best["metric_epoch"]
    final = res["final_evaluation"]
    assert final["status"] == "measured" and final["checkpoint"] == best["checkpoint"]
    # the toy evaluate action measures the same validation set: the same number
    assert final["metric_value"] == pytest.approx(best["metric_value"], rel=1e-6)

    # the status table rebuilt from the ledger (what the live display shows)
    snap = snapshot(Workspace(res["workspace"]))
    rows = {r["trial_id"]: r for r in snap.rows}
    for rid, t in hist.items():
        assert rows[rid]["best"] == pytest.approx(t["metric_value"])
    assert snap.best == pytest.approx(best["metric_value"])
    text = render_status(res["workspace"])
    head = re.search(r"best val_loss=([0-9.]+)", text.splitlines()[0])
    assert head and float(head.group(1)) == pytest.approx(best["metric_value"], rel=1e-3)
    assert text.splitlines()[2].split()[5] == ("best" if selection == "best" else "score")
