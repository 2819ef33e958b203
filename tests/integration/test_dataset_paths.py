"""Dataset paths are checked where the jobs run (the backend's check_paths):
review() lists an unreadable path as a blocker and still shows the rest,
run() refuses it before launching anything, and a backend that cannot tell
(third-party without check_paths, Kubernetes) gives a note, not a failure."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from skillkit import TOY

from tao_automl.errors import PreflightError
from tao_automl.planning.preparation import raise_blockers
from tao_automl.platforms import JobHandle, JobState, JobStatus
from tao_automl.runner import AutoMLRunner

SETTINGS = {"max_recommendations": 2, "max_concurrent": 2, "seed": 3, "baseline": False, "final_eval": False}


class Launched(BaseException):
    """Not an AutoMLError: a launch must never look like a clean rejection."""


@pytest.fixture
def tripwire(monkeypatch):
    def launched(*args, **kwargs):
        raise Launched("a job launch was attempted")

    for name in ("run_search", "run_evaluation"):
        monkeypatch.setattr(f"tao_automl.execution.run.{name}", launched)


def _prepared(runner: AutoMLRunner, **kwargs):
    return runner._prepare(runner._normalize(kwargs))


def test_review_lists_unreadable_path_as_blocker_and_shows_the_rest(tmp_path):
    (tmp_path / "a-file").write_text("not a folder")
    bad = str(tmp_path / "a-file" / "train.npz")  # under a non-directory: unreadable even for root
    good = tmp_path / "eval.npz"
    good.write_bytes(b"x")
    r = AutoMLRunner(skill_dir=TOY, workspace_dir=tmp_path / "ws")
    rv = r.review(automl_settings=SETTINGS, train_dataset_uri=bad, eval_dataset_uri=str(good))
    (blocker,) = rv["blockers"]
    assert blocker.startswith(f"train_datasets: dataset path '{bad}' is not readable on the local platform")
    assert "does not exist on this machine" in blocker
    checks = {c["key"]: c for c in rv["path_checks"]}
    assert checks["train_datasets"]["state"] == "unreadable" and checks["eval_dataset"]["state"] == "readable"
    assert checks["eval_dataset"]["path"] == str(good) and checks["eval_dataset"]["platform"] == "local"
    # the rest of the review is all there
    assert len(rv["recommendations"]) == 2 and rv["search_space"] and rv["estimate"]["total_s"] > 0
    assert rv["launch"]["datasets"] == {"train_datasets": bad, "eval_dataset": str(good)}
    json.dumps(rv)  # plain data
    assert not (tmp_path / "ws").exists()


def test_run_refuses_an_unreadable_path_before_launching(tmp_path, tripwire):
    bad = str(tmp_path / "no-such" / "train.npz")
    r = AutoMLRunner(skill_dir=TOY, workspace_dir=tmp_path / "ws")
    with pytest.raises(PreflightError) as ei:
        r.run(automl_settings=SETTINGS, train_dataset_uri=f"file://{bad}")
    msg = str(ei.value)
    assert "key 'train_datasets'" in msg and bad in msg and "local platform" in msg
    assert "does not exist on this machine" in msg  # the backend's reason
    assert ei.value.key == "train_datasets"
    assert not (tmp_path / "ws").exists()  # no workspace, no ledger, no job


def test_readable_path_is_accepted(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    r = AutoMLRunner(skill_dir=TOY, workspace_dir=tmp_path / "ws")
    (data / "eval.npz").write_bytes(b"x")
    rv = r.review(automl_settings=SETTINGS, dataset_uris={"train_datasets": str(data),
                                                          "eval_dataset": str(data / "eval.npz")})
    assert rv["blockers"] == [] and [c["state"] for c in rv["path_checks"]] == ["readable", "readable"]
    raise_blockers(_prepared(r, automl_settings=SETTINGS, train_dataset_uri=str(data)))  # no error


class ThirdParty:
    """A minimal third-party backend without check_paths (never asked to run a job here)."""

    name = "acme"

    def submit(self, request):
        raise AssertionError("not launched in this test")

    def status(self, handle: JobHandle) -> JobStatus:
        return JobStatus(state=JobState.UNKNOWN)

    def wait(self, handle, timeout):
        return self.status(handle)

    def logs(self, handle, since=0):
        return ""

    def cancel(self, handle):
        pass

    def list_artifacts(self, handle):
        return []

    def read_artifact(self, handle, path):
        return b""

    def cleanup(self, handle):
        pass


@pytest.mark.parametrize("platform", [ThirdParty(), "kubernetes"], ids=["third-party", "kubernetes"])
def test_backend_that_cannot_verify_gives_a_note_not_a_blocker(platform, tmp_path):
    extra = {"batch_api": object(), "core_api": object()} if platform == "kubernetes" else {}
    path = str(tmp_path / "only-on-the-cluster" / "train.npz")  # missing here: not our business
    r = AutoMLRunner(skill_dir=TOY, workspace_dir=tmp_path / "ws", platform_sdk=platform)
    rv = r.review(automl_settings=SETTINGS, train_dataset_uri=path, **extra)
    assert rv["blockers"] == []
    (check,) = rv["path_checks"]
    assert check["state"] == "unverified" and check["reason"]
    assert any(n.startswith(f"train_datasets: dataset path '{path}' not verified") for n in rv["notes"])
    raise_blockers(_prepared(r, automl_settings=SETTINGS, train_dataset_uri=path, **extra))  # not refused


def test_docker_path_must_be_mounted(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "train.npz").write_bytes(b"x")
    r = AutoMLRunner(skill_dir=TOY, workspace_dir=tmp_path / "ws", platform_sdk="docker")
    rv = r.review(automl_settings=SETTINGS, train_dataset_uri="/data/train.npz", mounts=[f"{data}:/data:ro"],
                  image="toy:1")
    assert rv["blockers"] == [] and rv["path_checks"][0]["state"] == "readable"
    rv = r.review(automl_settings=SETTINGS, train_dataset_uri=str(data / "train.npz"), image="toy:1")
    (blocker,) = rv["blockers"]
    assert "on the docker platform" in blocker and "not under any of the container's mounts" in blocker
    assert not Path(tmp_path / "ws").exists()
