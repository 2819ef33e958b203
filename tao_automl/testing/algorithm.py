"""The algorithm contract: what every entry of the algorithm registry must do.

1. **Builds without running**: the registry entry builds its searcher and
   scheduler for the run plan of a small search space (settings validated by
   the same preflight ``run`` uses), and ``review`` shows its algorithm,
   budget and initial batch -- launching nothing.
2. **End to end**: a real search through :class:`~tao_automl.runner.AutoMLRunner`
   and the local backend on :data:`tao_automl.testing.OBJECTIVE_SKILL`, a tiny
   skill whose job computes a closed-form objective per epoch: the result
   validates, holds the expected number of trials, the best trial is the best
   succeeded one, every reported value is the closed form of the trial's
   hyperparameters, the final evaluation measured the best checkpoint,
   ``max_concurrent`` held, and -- when the case says so -- trials were
   stopped early, paused and resumed from their own checkpoints, or exploited
   other trials' checkpoints.

Run it against your own registry entry by subclassing :class:`AlgorithmContract`
and overriding the ``algorithm_case`` fixture (needs pytest:
``pip install 'tao-automl[test]'``)::

    import pytest
    from tao_automl.testing.algorithm import AlgorithmCase, AlgorithmContract

    class TestMyAlgorithm(AlgorithmContract):
        @pytest.fixture
        def algorithm_case(self):
            return AlgorithmCase(name="my-algo", trials=4,
                                 settings={"max_recommendations": 4, "max_concurrent": 2})

Each end-to-end case runs once per test module (runs are cached).  Ray is
started once per module (``algorithm_ray`` fixture, 2 CPUs) unless it is
already initialized.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import attrs
import pytest

from tao_automl.algorithms import BuildContext, get_algorithm
from tao_automl.execution.ray_session import quiet_ray_env
from tao_automl.reporting.results import validate_result
from tao_automl.runner import AutoMLRunner
from tao_automl.store.ledger import JobLedger
from tao_automl.store.workspace import Workspace
from tao_automl.testing import OBJECTIVE_SKILL

__all__ = ["AlgorithmCase", "AlgorithmContract", "local_ray", "objective"]


def objective(hyperparameters: Mapping[str, Any], epoch: int, spec: Mapping[str, Any] | None = None) -> float:
    """The objective skill's ``val_loss`` at ``epoch`` (hyperparameters as dotted
    names; those absent take the spec template's values)."""
    hp = {"train.lr": 0.001, "train.momentum": 0.9, "model.depth": 2, **dict(hyperparameters)}
    return ((math.log10(float(hp["train.lr"])) + 2) ** 2 + (float(hp["train.momentum"]) - 0.5) ** 2
            + int(hp["model.depth"]) / 10 + 1 / max(int(epoch), 1))


@attrs.frozen(kw_only=True)
class AlgorithmCase:
    """One algorithm under test.

    Attributes:
        name: the registry name.
        trials: how many trials the run must hold (its budget).
        settings: ``automl_settings`` (a ``seed`` is added when absent).
        overrides: ``spec_overrides`` (``train.num_epochs``, ``train.epoch_sleep_s``).
        hyperparameters: ``automl_hyperparameters`` (default: the skill's three).
        stops_early: some trial must be stopped before its last epoch.
        pauses: some trial must be paused and resumed (a second job attempt);
            every resumed attempt starts from a checkpoint file.
        exploits: a resumed attempt may start from another trial's checkpoint
            (population-based training); without it, from its own.
    """

    name: str
    trials: int
    settings: Mapping[str, Any] = attrs.field(factory=dict)
    overrides: Mapping[str, Any] = attrs.field(factory=lambda: {"train.num_epochs": 2,
                                                               "train.epoch_sleep_s": 0.2})
    hyperparameters: list[str] | None = None
    stops_early: bool = False
    pauses: bool = False
    exploits: bool = False

    def run_args(self) -> dict[str, Any]:
        return {"automl_algorithm": self.name, "automl_settings": {"seed": 1, **self.settings},
                "spec_overrides": dict(self.overrides), "automl_hyperparameters": self.hyperparameters}


def _plan(runner: AutoMLRunner, **kwargs: Any) -> Any:
    """The validated run plan ``run(**kwargs)`` would execute (nothing launched)."""
    return runner._prepare(runner._normalize(kwargs))


def _attempts(result: Mapping[str, Any]) -> list[tuple[str, Any]]:
    led = JobLedger(Workspace(result["workspace"]))
    return [(rec.trial_id, att) for rec in led.trials() for att in rec.attempts]


def local_ray() -> Iterator[Any]:
    """A quiet 2-CPU local Ray for a test module (a generator for a module-scoped
    fixture: ``yield from local_ray()``); left running if it was already up."""
    quiet_ray_env()
    import ray

    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, resources={"tao_automl_slot": 8}, include_dashboard=False,
                 log_to_driver=False, logging_level="ERROR")
    yield ray
    if started:
        ray.shutdown()


class AlgorithmContract:
    """Inherit and override the ``algorithm_case`` fixture (see the module doc)."""

    @pytest.fixture
    def algorithm_case(self) -> AlgorithmCase:
        raise NotImplementedError(
            "override the algorithm_case fixture in your AlgorithmContract subclass: "
            "return AlgorithmCase(name='my-algo', trials=4, settings={...})")

    @pytest.fixture(scope="module")
    def algorithm_ray(self):
        yield from local_ray()

    @pytest.fixture(scope="module")
    def algorithm_runs(self, algorithm_ray, tmp_path_factory):
        cache: dict[str, dict] = {}

        def get(case: AlgorithmCase) -> dict:
            key = json.dumps(attrs.asdict(case), sort_keys=True, default=str)
            if key not in cache:
                ws = tmp_path_factory.mktemp(f"algorithm-{case.name}")
                cache[key] = AutoMLRunner(skill_dir=OBJECTIVE_SKILL, workspace_dir=ws).run(**case.run_args())
            return cache[key]

        return get

    # -- 1. builds without running -------------------------------------------------
    def test_builds_without_running(self, algorithm_case, tmp_path):
        case = algorithm_case
        runner = AutoMLRunner(skill_dir=OBJECTIVE_SKILL, workspace_dir=tmp_path / "ws")
        plan = _plan(runner, **case.run_args())
        spec = get_algorithm(case.name)
        assert plan.algorithm is spec
        built = spec.build(BuildContext(
            param_space=plan.space.to_ray(), metric=plan.metric, mode=plan.mode, settings=plan.settings,
            max_epochs=plan.max_epochs or 1, initial_points=plan.initial_points, space=plan.space))
        # Tune runs num_samples x every grid_search combination of the space
        space = built.param_space if built.param_space is not None else plan.space.to_ray()
        grid = math.prod(len(v["grid_search"]) for v in space.values()
                         if isinstance(v, Mapping) and "grid_search" in v)
        assert built.num_samples * grid == case.trials, \
            f"{case.name} builds {built.num_samples} x {grid} trials, expected {case.trials}"
        review = runner.review(**case.run_args())
        assert review["algorithm"] == spec.name
        assert review["blockers"] == []
        assert case.trials in review["budget"].values(), review["budget"]
        assert len(review["recommendations"]) <= case.trials
        names = {row["name"] for row in review["search_space"]}
        for rec in review["recommendations"]:
            assert set(rec["overrides"]) <= names, rec
        assert review["estimate"]["total_s"] > 0
        assert not (tmp_path / "ws").exists() or not any((tmp_path / "ws").rglob("*.log")), \
            "review launched a job"

    # -- 2. end to end ---------------------------------------------------------------
    def test_end_to_end(self, algorithm_case, algorithm_runs):
        case = algorithm_case
        res = algorithm_runs(case)
        validate_result(res)
        hist = res["history"]
        assert res["algorithm"] == get_algorithm(case.name).name and res["stopped_early"] is None
        assert len(hist) == case.trials == res["progress"]["total"], [t["rec_id"] for t in hist]
        assert all(t["status"] in ("succeeded", "stopped") for t in hist), [t["status"] for t in hist]
        succeeded = [t for t in hist if t["status"] == "succeeded"]
        assert succeeded and res["progress"]["completed"] == len(succeeded)
        assert res["best"]["metric_value"] == min(t["metric_value"] for t in succeeded)
        # every value a trial reported is the closed form of the configuration that ran
        for t in hist:
            last = t["metrics_per_epoch"][-1]
            assert last["val_loss"] == pytest.approx(objective(t["hyperparameters"], last["epoch"])), t
            assert t["epochs_completed"] == last["epoch"]
        # the final evaluation measured the best trial's checkpoint: the value stored at its epoch
        best, final = res["best"], res["final_evaluation"]
        assert Path(best["checkpoint"]).is_file() and best["rec_id"] in best["checkpoint"]
        assert final["status"] == "measured" and final["checkpoint"] == best["checkpoint"]
        assert final["metric_value"] == pytest.approx(best["metric_value"])
        # max_concurrent honoured (from the ledger's submit and end times)
        events = []
        for _, att in _attempts(res):
            end = (att.finished or att.stopped or {}).get("t")
            assert end is not None, "every attempt ends with a finished/stopped event"
            events += [(att.submitted_at, 1), (end, -1)]
        cur = peak = 0
        for _, d in sorted(events):
            cur += d
            peak = max(peak, cur)
        assert 1 <= peak <= res["settings"]["max_concurrent"], peak
        # early start (registry early_start): the searcher suggested the initial batch first, so
        # every job the driver started before Tune was adopted by a trial, none swept
        if get_algorithm(case.name).early_start:
            records = sorted(os.listdir(Path(res["workspace"]) / "early"))
            adopted = [n for n in records if n.endswith(".taken") and ".swept." not in n]
            assert records and adopted == records, f"{case.name}: early jobs not adopted: {records}"

    def test_stops_pauses_and_resumes_as_declared(self, algorithm_case, algorithm_runs):
        case = algorithm_case
        res = algorithm_runs(case)
        hist = res["history"]
        full = max(t["epochs_completed"] for t in hist)
        if case.stops_early:
            early = [t for t in hist if t["status"] == "stopped" and t["epochs_completed"] < full]
            assert early, f"{case.name}: no trial was stopped before epoch {full}"
            # early stopping is the scheduler's: a trial that succeeded trained every epoch
            for t in hist:
                if t["status"] == "succeeded":
                    assert t["epochs_completed"] == full, t
        resumed = [(tid, att) for tid, att in _attempts(res) if att.number > 1]
        if case.pauses:
            assert resumed, f"{case.name}: no trial was paused and resumed"
        elif not case.exploits:
            assert not resumed, f"{case.name}: trials were relaunched: {[t for t, _ in resumed]}"
        for tid, att in resumed:
            assert att.resume_from and Path(att.resume_from).is_file(), (tid, att.resume_from)
            if not case.exploits:
                assert f"/{tid}/" in att.resume_from, (tid, att.resume_from)
            spec = json.loads(Path(att.spec_path).read_text())
            assert spec["train"]["resume_training_checkpoint_path"] == att.resume_from
