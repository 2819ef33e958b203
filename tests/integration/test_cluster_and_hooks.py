"""Runner on a multi-node Ray test cluster, user searcher/scheduler objects,
hooks, and train_sample_count batch caps -- real runs of the toy skill."""

from __future__ import annotations

from pathlib import Path

import pytest

from tao_automl.reporting.results import validate_result
from tao_automl.runner import AutoMLRunner
from tao_automl.store.ledger import JobLedger
from tao_automl.store.workspace import Workspace

TOY = Path(__file__).resolve().parents[2] / "examples" / "toy_skill"


def _submitted(ws_root: str) -> list[dict]:
    ws = Workspace(ws_root)
    out = []
    for tid in JobLedger(ws).trial_ids():
        out += [e for e in ws.events(f"ledger/{tid}") if e["kind"] == "submitted"]
    return out


@pytest.mark.slow
def test_trials_spread_over_a_multi_node_cluster(tmp_path):
    """With a cluster address, Ray is joined (not started) and trials run on
    several nodes; concurrency is still bounded by max_concurrent."""
    import ray
    from ray.cluster_utils import Cluster

    from tao_automl.execution.ray_session import SLOT, quiet_ray_env

    if ray.is_initialized():
        ray.shutdown()
    quiet_ray_env()
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "resources": {SLOT: 2}})
    cluster.add_node(num_cpus=1, resources={SLOT: 2})
    cluster.wait_for_nodes()
    try:
        runner = AutoMLRunner(skill_dir=TOY, workspace_dir=tmp_path)
        res = runner.run(
            automl_algorithm="random",
            automl_settings={"max_recommendations": 8, "max_concurrent": 4, "seed": 3,
                             "ray_address": cluster.address, "baseline": False, "final_eval": False},
            spec_overrides={"train.num_epochs": 2, "train.epoch_sleep_s": 0.3},
        )
        validate_result(res)
        assert res["progress"]["completed"] == 8
        nodes = {e["node"] for e in _submitted(res["workspace"])}
        assert len(nodes) == 2, nodes
    finally:
        ray.shutdown()
        cluster.shutdown()


def test_user_searcher_scheduler_and_hooks(tmp_path, ray_cluster):
    """A user's own Ray Tune searcher and scheduler replace the registry's;
    on_recommendation(rec)/on_result(rec, metric_value, status) see every trial
    (rec: a read-only mapping of the dotted values, nvidia-tao-automl's shape)."""
    from ray.tune.schedulers import FIFOScheduler
    from ray.tune.search import BasicVariantGenerator

    recs, results = [], []
    runner = AutoMLRunner(skill_dir=TOY, workspace_dir=tmp_path)
    res = runner.run(
        automl_algorithm="random",
        automl_settings={"max_recommendations": 3, "max_concurrent": 2, "seed": 5,
                         "baseline": False, "final_eval": False},
        spec_overrides={"train.num_epochs": 2},
        searcher=BasicVariantGenerator(random_state=7),
        scheduler=FIFOScheduler(),
        on_recommendation=recs.append,
        on_result=lambda rec, value, status: results.append((rec, value, status)),
    )
    assert res["progress"]["total"] == 3
    assert sorted(r.rec_id for r in recs) == sorted(t["rec_id"] for t in res["history"])
    assert all(set(r) == {p["name"] for p in res["search_space"]} for r in recs)
    assert all(r.status == "pending" and r.job_id is None for r in recs)
    by_id = {t["rec_id"]: t for t in res["history"]}
    assert sorted(r.id for r, _, _ in results) == sorted(by_id)
    for rec, value, status in results:
        assert status == rec.status == "success" and rec.state == "succeeded"
        assert value == rec.result == by_id[rec.id]["metric_value"] is not None
        assert rec.job_id == by_id[rec.id]["job_id"]
        assert dict(rec) == by_id[rec.id]["hyperparameters"] == rec.hyperparameters


def test_train_sample_count_caps_batch_before_launch(tmp_path, ray_cluster):
    """A batch that would give zero steps for the known sample count is capped
    before the job starts, and the adjustment is recorded in the history."""
    runner = AutoMLRunner(skill_dir=TOY, workspace_dir=tmp_path)
    res = runner.run(
        automl_algorithm="random",
        automl_hyperparameters=["train.batch_size", "train.lr"],
        automl_settings={"max_recommendations": 4, "max_concurrent": 2, "seed": 1,
                         "train_sample_count": 40, "baseline": False, "final_eval": False},
        spec_overrides={"train.num_epochs": 1},
    )
    assert len(res["history"]) == 4
    for t in res["history"]:
        assert t["hyperparameters"]["train.batch_size"] <= 40
        assert t["status"] == "succeeded"
    adjusted = [t for t in res["history"] if t["adjustments"]]
    assert adjusted, "seed 1 samples at least one batch above 40"
    assert all("train.batch_size" in a for t in adjusted for a in t["adjustments"])


def test_batch_minimum_above_the_sample_cap_is_an_error(tmp_path):
    """If even the smallest allowed batch gives zero steps, nothing launches."""
    from tao_automl.errors import AutoMLError

    runner = AutoMLRunner(skill_dir=TOY, workspace_dir=tmp_path)
    with pytest.raises(AutoMLError, match="batch"):
        runner.run(
            automl_algorithm="random",
            automl_hyperparameters=["train.batch_size"],
            custom_param_ranges={"train.batch_size": {"valid_min": 64, "valid_max": 256}},
            automl_settings={"max_recommendations": 2, "seed": 1, "train_sample_count": 40,
                             "baseline": False},
        )
    assert not any(tmp_path.rglob("ledger"))
