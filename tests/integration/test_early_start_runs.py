"""Early start through real Ray Tune and real local jobs: the driver submits
the first batch before Tune runs, each first-batch trial adopts the job of its
own configuration (no job runs twice), and jobs nobody adopts are canceled
once Tune goes past the first batch, never silently."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest
from skillkit import TOY

from tao_automl.execution import early
from tao_automl.platforms.base import JobHandle
from tao_automl.platforms.local import LocalBackend
from tao_automl.reporting.results import validate_result
from tao_automl.runner import AutoMLRunner
from tao_automl.store.ledger import JobLedger
from tao_automl.store.workspace import Workspace

BUDGET, SLOTS = 4, 2


def _run(ws: Path, algorithm: str, **settings):
    res = AutoMLRunner(skill_dir=TOY, workspace_dir=ws).run(
        automl_algorithm=algorithm,
        automl_settings={"max_recommendations": BUDGET, "max_concurrent": SLOTS, "baseline": False,
                         "final_eval": False, "seed": 5, "session_id": "exp", **settings},
        spec_overrides={"train.num_epochs": 2})
    validate_result(res)
    assert [t["status"] for t in res["history"]] == ["succeeded"] * BUDGET, res["history"]
    return res, JobLedger(Workspace(ws / "exp"))


def _job_logs(ws: Path) -> list[Path]:
    """Every job the local backend started in the run (one control folder each)."""
    return sorted((ws / "exp").rglob("job.log"))


@pytest.mark.parametrize("algorithm", ["bayesian", "random"])
def test_first_batch_trials_adopt_the_jobs_the_driver_started(ray_cluster, tmp_path, algorithm):
    res, led = _run(tmp_path / "ws", algorithm)
    folder = tmp_path / "ws" / "exp" / early.EARLY_DIR
    records = sorted(os.listdir(folder))
    trials = {r.trial_id: r for r in led.trials()}
    # one record per first-batch configuration (random: and per queued one fed while Tune
    # started), each taken by a trial of this run
    assert (len(records) >= SLOTS if algorithm == "random" else len(records) == SLOTS), records
    assert all(n.endswith(".taken") for n in records), records
    owners = {n.split(".")[1] for n in records}
    assert owners <= set(trials), (owners, set(trials))
    for name in records:
        index, owner = name.split(".")[:2]
        (att,) = trials[owner].attempts
        # the job ran in trials/early-<i>/1; the trial's folder links to it, so its
        # files are found where every trial's are: trials/<trial>/1
        assert att.number == 1 and att.handle.results_dir.endswith(f"/{owner}/1")
        assert os.readlink(Path(att.handle.results_dir).parent) == f"early-{index}"
        assert att.handle.data["log_path"].startswith(str(Path(att.handle.results_dir).parent.parent / f"early-{index}"))
        assert att.spec_path == f"{att.handle.results_dir}/spec.yaml" and Path(att.spec_path).is_file()
        # launched by the driver before Tune started the trial that adopted it
        assert att.launched_at < trials[owner].first_planned_t < att.submitted_at
    # nothing ran twice: BUDGET jobs in all, the others in their trials' own folders
    assert len(_job_logs(tmp_path / "ws")) == BUDGET
    for tid in set(trials) - owners:
        (att,) = trials[tid].attempts
        assert att.launched_at == att.submitted_at and f"/{tid}/1" in att.handle.results_dir
        assert not Path(att.handle.results_dir).parent.is_symlink()
    best = res["best"]
    assert best["rec_id"] in best["checkpoint"] and Path(best["checkpoint"]).is_file()
    # the adopted jobs' epochs streamed into the ledger like any other job's
    assert all(sorted({e["epoch"] for e in trials[o].epochs}) == [1, 2] for o in owners)
    assert {t["rec_id"] for t in res["history"]} == set(trials)


def test_early_start_off_leaves_every_job_to_its_trial(ray_cluster, tmp_path):
    _, led = _run(tmp_path / "ws", "random", early_start=False)
    assert not (tmp_path / "ws" / "exp" / early.EARLY_DIR).exists()
    for rec in led.trials():
        (att,) = rec.attempts
        assert f"/{rec.trial_id}/1" in att.handle.results_dir


def test_jobs_no_trial_adopts_are_canceled_and_said(ray_cluster, tmp_path, monkeypatch, caplog):
    """A searcher that suggests something else than the batch the driver
    started (here: the driver's keys can never match) costs no trial: each
    trial submits its own job, and the unadopted ones are canceled once Tune
    has gone past the batch (no grace here), with a warning."""
    monkeypatch.setattr(early, "config_key", lambda values, epochs: "matches no trial")  # driver only
    monkeypatch.setattr(early, "SWEEP_GRACE_S", 0.0)
    with caplog.at_level(logging.WARNING, logger="tao_automl"):
        _, led = _run(tmp_path / "ws", "random")
    folder = tmp_path / "ws" / "exp" / early.EARLY_DIR
    n = early.count(str(folder))  # the batch, and queued jobs fed until Tune's first trial started
    assert SLOTS <= n <= BUDGET and sorted(os.listdir(folder)) == sorted(f"{i}.swept.taken" for i in range(n))
    swept = [r for r in caplog.records if "adopted by no trial" in r.getMessage()]
    assert len(swept) == n and all("started its trial without adopting it" in r.getMessage()
                                   for r in swept), swept
    backend = LocalBackend()
    for i in range(n):
        rec = early._read(folder / f"{i}.swept.taken")
        st = backend.status(JobHandle.from_dict(rec["handle"]))
        assert st.terminal, st  # canceled, or ended on its own before the sweep (2 short epochs)
    for rec in led.trials():  # every trial ran its own job
        (att,) = rec.attempts
        assert f"/{rec.trial_id}/1" in att.handle.results_dir
    assert len(_job_logs(tmp_path / "ws")) == BUDGET + n


def test_while_ray_starts_the_driver_feeds_queued_jobs_and_trials_adopt_them(ray_cluster, tmp_path, monkeypatch):
    """random draws every configuration in advance: while a (here 4 s) slow Ray
    start keeps Tune away, each slot that frees up runs the next queued
    configuration; Tune's trials adopt every one, in order, and nothing runs twice."""
    from tao_automl.execution import run as run_mod

    enter = run_mod.RaySession.__enter__

    def slow_enter(self):
        import time

        time.sleep(4.0)
        return enter(self)

    monkeypatch.setattr(run_mod.RaySession, "__enter__", slow_enter)
    budget = 10
    res = AutoMLRunner(skill_dir=TOY, workspace_dir=tmp_path / "ws").run(
        automl_algorithm="random",
        automl_settings={"max_recommendations": budget, "max_concurrent": SLOTS, "baseline": False,
                         "final_eval": False, "seed": 3, "session_id": "exp"},
        spec_overrides={"train.num_epochs": 1})
    assert [t["status"] for t in res["history"]] == ["succeeded"] * budget
    folder = tmp_path / "ws" / "exp" / early.EARLY_DIR
    names = sorted(os.listdir(folder), key=lambda n: int(n.split(".")[0]))
    assert len(names) > SLOTS, names  # queued jobs were fed while Ray started
    trials = {r.trial_id: r for r in JobLedger(Workspace(tmp_path / "ws" / "exp")).trials()}
    owners = [n.split(".")[1] for n in names]
    assert all(n.endswith(".taken") for n in names) and set(owners) <= set(trials), names
    assert len(set(owners)) == len(owners)  # one trial per early job
    # Tune suggested the queue in order: early job i went to Tune's i-th trial (its
    # generator numbers trials in the order it suggests them: <prefix>_0000i)
    assert [int(o.rsplit("_", 1)[1]) for o in owners] == list(range(len(owners))), owners
    for name, owner in zip(names, owners, strict=True):
        (att,) = trials[owner].attempts
        assert att.launched_at < trials[owner].first_planned_t  # started before Tune planned the trial
        assert os.readlink(Path(att.handle.results_dir).parent) == f"early-{name.split('.')[0]}"
    assert len(_job_logs(tmp_path / "ws")) == budget  # nothing ran twice
