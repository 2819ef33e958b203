"""WandB tracking, offline: a tiny real search writes one run per trial plus a
summary run under <workspace>/wandb; the test reads the `.wandb` transaction
logs (leveldb-log framing of wandb_internal_pb2.Record) and checks config,
history and summary.  No network."""

from __future__ import annotations

import json
import logging
import struct
import sys
from pathlib import Path

import pytest

from tao_automl.reporting.tracking import WandbTracker, wandb_options

REPO = Path(__file__).resolve().parents[2]
TOY = REPO / "examples" / "toy_skill"

pytest.importorskip("wandb")


def _records(path: Path):
    """Records of a .wandb file: 7-byte header, then leveldb-log chunks in 32 KiB blocks."""
    data = path.read_bytes()
    assert data[:4] == b":W&B"
    pos, block, buf = 7, 32768, b""
    while pos + 7 <= len(data):
        left = block - pos % block
        if left < 7:
            pos += left
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        chunk = data[pos + 7:pos + 7 + length]
        pos += 7 + length
        if kind == 0 and length == 0:
            break
        if kind == 1:
            yield chunk
        elif kind == 2:
            buf = chunk
        elif kind == 3:
            buf += chunk
        elif kind == 4:
            yield buf + chunk
            buf = b""


def read_offline_run(run_dir: Path) -> dict:
    """{'run': {id, group, project, job_type, tags}, 'config': {}, 'history': [rows], 'summary': {}, 'exit': code}."""
    from wandb.proto import wandb_internal_pb2 as pb

    (log_file,) = run_dir.glob("*.wandb")
    out: dict = {"run": {}, "config": {}, "history": [], "summary": {}, "exit": None}

    def key(item) -> str:
        return item.key or "/".join(item.nested_key)

    for raw in _records(log_file):
        rec = pb.Record()
        rec.ParseFromString(raw)
        kind = rec.WhichOneof("record_type")
        if kind == "run":
            r = rec.run
            out["run"] = {"id": r.run_id, "group": r.run_group, "project": r.project,
                          "job_type": r.job_type, "tags": list(r.tags), "name": r.display_name}
            for u in r.config.update:
                out["config"][key(u)] = json.loads(u.value_json)
        elif kind == "config":
            for u in rec.config.update:
                out["config"][key(u)] = json.loads(u.value_json)
        elif kind == "history":
            out["history"].append({key(i): json.loads(i.value_json) for i in rec.history.item})
        elif kind == "summary":
            for u in rec.summary.update:
                out["summary"][key(u)] = json.loads(u.value_json)
        elif kind == "exit":
            out["exit"] = rec.exit.exit_code
    return out


def read_complete_run(run_dir: Path, timeout_s: float = 60.0) -> dict:
    """read_offline_run once the file holds its run and exit records: WandB's
    service process writes the offline file after ``finish()`` returns (seen
    late on a machine at load 30)."""
    import time

    deadline = time.monotonic() + timeout_s
    while True:
        out = read_offline_run(run_dir)
        if (out["run"] and out["exit"] is not None) or time.monotonic() > deadline:
            return out
        time.sleep(0.5)


@pytest.fixture(scope="module")
def tracked_run(tmp_path_factory):
    from tao_automl.runner import AutoMLRunner

    ws = tmp_path_factory.mktemp("wb")
    runner = AutoMLRunner(skill_dir=TOY, workspace_dir=ws)
    result = runner.run(
        automl_algorithm="random",
        automl_settings={"max_recommendations": 2, "max_concurrent": 2, "seed": 3, "baseline": False,
                         "wandb": {"mode": "offline", "project": "tao-automl-test", "tags": ["unit"]}},
        spec_overrides={"train.num_epochs": 3},
        env={"SOME_SECRET_TOKEN": "s3cr3t-value"},
    )
    from tao_automl.execution.extras import wait_for_summaries

    assert wait_for_summaries(120)  # the summary run is written after run() returns
    return result


def test_one_offline_run_per_trial_with_config_history_summary(tracked_run):
    result = tracked_run
    root = Path(result["workspace"]) / "wandb"
    runs = {p.name: read_complete_run(p) for p in root.glob("offline-run-*") if p.is_dir()}
    trials = {r["run"]["id"]: r for r in runs.values() if r["run"]["job_type"] == "trial"}
    assert len(trials) == len(result["history"]) == 2
    for t in result["history"]:
        run = next(r for rid, r in trials.items() if rid.endswith(t["rec_id"]))
        assert run["run"]["group"] == result["session_id"]
        assert run["run"]["project"] == "tao-automl-test"
        assert run["run"]["tags"] == ["unit"]
        # hyperparameters as config (the exact values the trial ran with)
        for name, value in t["hyperparameters"].items():
            assert run["config"][name] == pytest.approx(value)
        assert run["config"]["algorithm"] == "random"
        assert run["config"]["metric"] == "val_loss"
        # per-epoch metrics streamed: one history row per epoch with all values
        rows = [h for h in run["history"] if "val_loss" in h]
        assert [h["epoch"] for h in rows] == [1, 2, 3]
        assert {"train_loss", "val_accuracy"} <= set(rows[0])
        per_epoch = [e["val_loss"] for e in t["metrics_per_epoch"]]
        assert [h["val_loss"] for h in rows] == pytest.approx(per_epoch)
        # final status in the summary
        assert run["summary"]["status"] == t["status"] == "succeeded"
        assert run["summary"]["metric_value"] == pytest.approx(t["metric_value"])
        assert run["summary"]["job_id"] == t["job_id"]
        assert run["exit"] == 0


def test_summary_run_has_best_baseline_final_and_trials_table(tracked_run):
    result = tracked_run
    root = Path(result["workspace"]) / "wandb"
    (summary_dir,) = [p for p in root.glob("offline-run-*summary") if p.is_dir()]
    run = read_complete_run(summary_dir)
    assert run["run"]["job_type"] == "summary"
    assert run["run"]["group"] == result["session_id"]
    s = run["summary"]
    assert s["best/metric_value"] == pytest.approx(result["best"]["metric_value"])
    assert s["best/trial"] == result["best"]["rec_id"]
    assert s["baseline/status"] == "skipped"
    assert s["final/status"] == result["final_evaluation"]["status"]
    assert s["trials/total"] == 2
    for name, value in result["best"]["hyperparameters"].items():
        assert s[f"best/{name}"] == pytest.approx(value)
    assert s["trials/_type"] == "table-file"
    (table_file,) = summary_dir.glob("files/media/table/trials_*.table.json")
    table = json.loads(table_file.read_text())
    assert table["columns"][:4] == ["rec_id", "job_id", "status", "metric_value"]
    assert sorted(r[0] for r in table["data"]) == sorted(t["rec_id"] for t in result["history"])


def test_no_secret_reaches_the_run_files(tracked_run):
    root = Path(tracked_run["workspace"]) / "wandb"
    files = [f for f in root.rglob("*") if f.is_file()]
    # the check below means nothing unless WandB wrote its runs: one per trial and the summary
    logs = [f for f in files if f.suffix == ".wandb"]
    assert len(logs) == len(tracked_run["history"]) + 1 == 3, sorted(str(f.relative_to(root)) for f in files)
    assert all(f.stat().st_size > 0 for f in logs)
    for f in files:
        assert b"s3cr3t-value" not in f.read_bytes(), f


def test_options_from_block_and_env(monkeypatch):
    assert wandb_options({"algorithm": "random", "wandb": None}) is None
    assert wandb_options({"enabled": False}) is None
    monkeypatch.setenv("WANDB_PROJECT", "from-env")
    monkeypatch.setenv("WANDB_TAGS", "a,b")
    monkeypatch.setenv("WANDB_MODE", "offline")
    opts = wandb_options(True)
    assert opts["project"] == "from-env" and opts["tags"] == ["a", "b"] and opts["mode"] == "offline"
    assert wandb_options({"project": "mine", "mode": "online"})["project"] == "mine"
    monkeypatch.setenv("WANDB_MODE", "disabled")
    assert wandb_options({"project": "x"}) is None


def _tracker(tmp_path, mode):
    return WandbTracker(workspace_root=str(tmp_path), session_id="s1",
                        options={"project": "p", "mode": mode, "tags": []},
                        run_config={}, metric="val_loss")


def test_missing_login_is_one_warning_and_tracking_off(tmp_path, monkeypatch, caplog):
    import tao_automl.reporting.tracking as tracking

    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.delenv("WANDB_IDENTITY_TOKEN_FILE", raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))
    monkeypatch.setattr(tracking, "_WARNED", set())
    tr = _tracker(tmp_path, "online")
    with caplog.at_level(logging.WARNING, logger="tao_automl"):
        tr.trial_started("t1", {"lr": 0.1})
        tr.trial_started("t2", {"lr": 0.2})
        tr.summary({"history": []})
    msgs = [r.getMessage() for r in caplog.records if "WandB" in r.getMessage()]
    assert len(msgs) == 1 and "not logged in" in msgs[0] and "\n" not in msgs[0]
    assert tr.enabled is False and not (tmp_path / "wandb").exists()


def test_missing_package_is_one_warning_and_tracking_off(tmp_path, monkeypatch, caplog):
    import tao_automl.reporting.tracking as tracking

    monkeypatch.setitem(sys.modules, "wandb", None)  # import wandb -> ImportError
    monkeypatch.setattr(tracking, "_WARNED", set())
    tr = _tracker(tmp_path, "offline")
    with caplog.at_level(logging.WARNING, logger="tao_automl"):
        tr.trial_started("t1", {})
        tr.trial_progress("t1")
        tr.trial_finished("t1")
    msgs = [r.getMessage() for r in caplog.records]
    assert msgs == ["WandB tracking is off: the 'wandb' package is not installed (pip install wandb)"]
    assert tr.enabled is False
