"""The local folder of a URI workspace's run: published into the workspace
and removed when the run ends, restored on resume (fsspec memory://)."""

from __future__ import annotations

import os
import tempfile
import uuid

import pytest

from tao_automl.store import local_mirror
from tao_automl.store.workspace import Workspace


@pytest.fixture
def ws(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    return Workspace(f"memory://bucket/automl/exp-{uuid.uuid4().hex[:6]}")


def test_publish_uploads_removes_and_restore_brings_back(ws, tmp_path):
    local = local_mirror.local_run_dir(ws.root)
    assert local.parent == tmp_path / "tao-automl-jobs"
    ckpt = local / "trials" / "t1" / "1" / "model_epoch_002.pth"
    ckpt.parent.mkdir(parents=True)
    ckpt.write_bytes(b"weights")
    os.symlink(ckpt.name, ckpt.parent / "model_latest.pth")
    os.symlink("gone.pth", ckpt.parent / "dangling.pth")
    (local / "wandb").mkdir()
    (local / "wandb" / "run.wandb").write_text("offline run")

    local_mirror.publish(ws)
    assert not (tmp_path / "tao-automl-jobs").exists()
    assert ws.read_bytes("trials/t1/1/model_epoch_002.pth") == b"weights"
    assert ws.read_bytes("trials/t1/1/model_latest.pth") == b"weights"
    assert not ws.exists("trials/t1/1/dangling.pth")
    assert ws.read_bytes("wandb/run.wandb") == b"offline run"

    result = {"best": {"checkpoint": str(ckpt), "other": f"{local}x/y", "n": 3},
              "history": [{"results_dir": str(ckpt.parent)}]}
    assert local_mirror.workspace_paths(result, ws) == {
        "best": {"checkpoint": f"{ws.root}/trials/t1/1/model_epoch_002.pth", "other": f"{local}x/y",
                 "n": 3},
        "history": [{"results_dir": f"{ws.root}/trials/t1/1"}],
    }

    local_mirror.restore(ws)  # resume: the same local paths again
    assert ckpt.read_bytes() == b"weights"
    assert (local / "wandb" / "run.wandb").read_text() == "offline run"
    ckpt.write_bytes(b"newer, written by a job still running after a crash")
    local_mirror.restore(ws)  # a folder left in place by a crashed driver is never overwritten
    assert ckpt.read_bytes().startswith(b"newer")


def test_failed_upload_keeps_the_local_folder(ws, monkeypatch, caplog):
    local = local_mirror.local_run_dir(ws.root)
    (local / "trials").mkdir(parents=True)
    (local / "trials" / "spec.yaml").write_text("a: 1\n")
    fs, _ = ws.filesystem()

    def broken(*a, **k):
        raise OSError("store unreachable")

    monkeypatch.setattr(fs, "put_file", broken)
    local_mirror.publish(ws)
    assert (local / "trials" / "spec.yaml").exists()
    assert "store unreachable" in caplog.text and str(local) in caplog.text


def test_local_workspace_has_no_local_folder(tmp_path):
    ws = Workspace(tmp_path / "ws")
    local_mirror.publish(ws)
    local_mirror.restore(ws)
    assert local_mirror.workspace_paths({"a": str(tmp_path)}, ws) == {"a": str(tmp_path)}
