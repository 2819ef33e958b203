"""When is Ray Tune's saved state unusable, and what is left of a grid
(tao_automl.execution.rebuild); the end-to-end resume is in
tests/integration/test_resume_rebuild.py."""

from __future__ import annotations

import json
import pickle

from tao_automl.execution.orphans import OrphanSettler, abandon
from tao_automl.execution.rebuild import remaining_grid, settled_trials, unrestorable
from tao_automl.platforms.base import JobHandle
from tao_automl.store.ledger import JobLedger
from tao_automl.store.workspace import Workspace


def handle(n: int) -> dict:
    return JobHandle(backend="local", job_id=str(n), data={}).to_dict()


def finished_trial(led: JobLedger, tid: str, config: dict, value: float = 0.5) -> None:
    led.record(tid, "planned", config=config, hyperparameters=config)
    led.record(tid, "submitted", attempt=1, handle=handle(1))
    led.record(tid, "finished", attempt=1, state="succeeded", metric_value=value, final=True)


def tune_state(ws: Workspace, trial_ids: list[str]) -> None:
    data = {"trial_data": [[json.dumps({"trial_id": t}), "{}"] for t in trial_ids], "runner_data": {}}
    ws.write_json("ray/tune/experiment_state-2026-01-01_00-00-00.json", data)
    ws.write_bytes("ray/tune/tuner.pkl", pickle.dumps({"tuner": 1}))
    ws.write_bytes("ray/tune/searcher-state-2026-01-01_00-00-00.pkl", pickle.dumps({"searcher": 1}))


def test_intact_state_is_restorable(tmp_path):
    ws = Workspace(tmp_path / "exp")
    led = JobLedger(ws)
    finished_trial(led, "t1", {"a": 1})
    tune_state(ws, ["t1", "t2"])
    assert unrestorable(led) is None


def test_missing_state(tmp_path):
    led = JobLedger(Workspace(tmp_path / "exp"))
    finished_trial(led, "t1", {"a": 1})
    assert "missing" in unrestorable(led)


def test_truncated_files(tmp_path):
    ws = Workspace(tmp_path / "exp")
    led = JobLedger(ws)
    finished_trial(led, "t1", {"a": 1})
    for name in ("experiment_state-2026-01-01_00-00-00.json", "tuner.pkl",
                 "searcher-state-2026-01-01_00-00-00.pkl"):
        tune_state(ws, ["t1"])
        p = tmp_path / "exp" / "ray" / "tune" / name
        p.write_bytes(p.read_bytes()[:10])
        why = unrestorable(led)
        assert why is not None and name in why and "unreadable" in why


def test_state_lacking_a_finished_trial(tmp_path):
    ws = Workspace(tmp_path / "exp")
    led = JobLedger(ws)
    finished_trial(led, "t1", {"a": 1})
    finished_trial(led, "t2", {"a": 2})
    tune_state(ws, ["t1"])
    assert "t2" in unrestorable(led)
    ws.write_json("ray/seeded.json", {"trial_ids": ["t2"]})  # seeded into a rebuilt experiment: known
    assert unrestorable(led) is None


def test_a_finished_trial_is_never_abandoned(tmp_path):
    led = JobLedger(Workspace(tmp_path / "exp"))
    finished_trial(led, "t1", {"a": 1})
    abandon(led, backend=None, trial_id="t1")
    assert not led.trial("t1").abandoned and len(led.trials()) == 1
    settler = OrphanSettler(led, None, ["t1"])
    settler.settle(["new"], final=True)
    assert not led.trial("t1").abandoned
    assert [r.trial_id for r in settled_trials(led)] == ["t1"]


def test_remaining_grid(tmp_path):
    led = JobLedger(Workspace(tmp_path / "exp"))
    finished_trial(led, "t1", {"a": 1, "b": "x", "c": 0.1})
    finished_trial(led, "t2", {"a": 2, "b": "y", "c": 0.1})
    space = {"a": {"grid_search": [1, 2]}, "b": {"grid_search": ["x", "y"]}, "c": 0.1}
    rest, points = remaining_grid(space, led.trials())
    assert rest["c"] == 0.1 and rest["a"].categories == [1, 2] and rest["b"].categories == ["x", "y"]
    assert points == [{"a": 1, "b": "y"}, {"a": 2, "b": "x"}]
