"""The progress table, built from a ledger written the way trials write it."""

from __future__ import annotations

import io
import re
import time

import pytest

from tao_automl.platforms.base import JobHandle
from tao_automl.reporting.progress import (
    LedgerReader,
    LiveProgress,
    render_html,
    render_rich,
    render_status,
    render_text,
    snapshot,
)
from tao_automl.store.ledger import JobLedger
from tao_automl.store.workspace import Workspace


def _handle(job_id: str) -> dict:
    return JobHandle(backend="local", job_id=job_id, results_dir=f"/r/{job_id}").to_dict()


@pytest.fixture
def ws(tmp_path):
    ws = Workspace(tmp_path / "automl-test-0001")
    ws.write_json("settings.json", {
        "created": time.time() - 100, "metric": "val_loss", "direction": "minimize",
        "settings": {"algorithm": "asha", "max_recommendations": 4, "max_concurrent": 2},
    })
    led = JobLedger(ws)
    # t1: finished in 3 epochs; t2: running at epoch 2; t3: failed; t4 not started
    led.record("t1", "planned", hyperparameters={"train.lr": 0.01, "model.activation": "relu"})
    led.record("t1", "submitted", attempt=1, handle=_handle("101"))
    for e, v in enumerate([1.2, 0.8, 0.9], 1):
        led.record("t1", "epoch", attempt=1, epoch=e, values={"val_loss": v, "train_loss": v + 1})
    led.record("t1", "finished", attempt=1, state="succeeded", metric_value=0.9, final=True)
    led.record("t2", "planned", hyperparameters={"train.lr": 0.1, "model.activation": "tanh"})
    led.record("t2", "submitted", attempt=1, handle=_handle("102"))
    led.record("t2", "epoch", attempt=1, epoch=1, values={"val_loss": 2.0})
    led.record("t2", "epoch", attempt=1, epoch=2, values={"val_loss": 1.5})
    led.record("t3", "planned", hyperparameters={"train.lr": 0.5, "model.activation": "relu"})
    led.record("t3", "submitted", attempt=1, handle=_handle("103"))
    led.record("t3", "finished", attempt=1, state="failed", reason="oom", exit_code=137,
               message="CUDA out of memory", final=True)
    return ws


def test_rows_status_current_best_job(ws):
    snap = snapshot(ws)
    rows = {r["trial_id"]: r for r in snap.rows}
    assert rows["t1"]["status"] == "succeeded" and rows["t1"]["job_id"] == "101"
    assert rows["t1"]["current"] == 0.9 and rows["t1"]["best"] == 0.8   # best epoch, minimize
    assert rows["t2"]["status"] == "running" and rows["t2"]["current"] == 1.5 and rows["t2"]["epochs"] == 2
    assert rows["t2"]["elapsed_s"] is not None and rows["t2"]["elapsed_s"] >= 0
    assert rows["t3"]["status"] == "failed" and rows["t3"]["failure_reason"] == "oom"
    assert snap.counts == {"succeeded": 1, "failed": 1, "stopped": 0, "running": 1, "pending": 0}
    assert snap.eta_s is not None and snap.eta_s >= 0  # timing data exists (t1, t3 finished)


def test_text_table_same_from_another_process_view(ws, tmp_path):
    text = render_status(ws.root)
    assert "\x1b" not in text  # ANSI-free
    lines = text.splitlines()
    assert re.search(r"automl-test-0001 \[running\] \| trials 2/4 done \| 1 ok, 1 failed, 0 stopped, 1 running", lines[0])
    assert "best val_loss=0.8" in lines[0] and "ETA ~" in lines[0]
    header = lines[2].split()
    assert header[:7] == ["trial", "job", "status", "epoch", "current", "best", "elapsed"]
    assert {"lr", "activation"} <= set(header)
    body = {ln.split()[0]: ln.split() for ln in lines[4:]}
    assert body["t2"][1:3] == ["102", "running"]
    # a workspace_dir with experiments inside resolves to the newest one
    other = Workspace(tmp_path / "automl-test-0000")
    other.write_json("settings.json", {"created": time.time() - 1000, "settings": {}})
    assert render_status(tmp_path).startswith("automl-test-0001 [running]")


def test_no_eta_before_any_trial_finished(tmp_path):
    ws = Workspace(tmp_path / "e")
    ws.write_json("settings.json", {"created": time.time(), "metric": "m", "direction": "maximize",
                                    "settings": {"max_recommendations": 3}})
    JobLedger(ws).record("a", "planned", hyperparameters={"x": 1})
    JobLedger(ws).record("a", "submitted", attempt=1, handle=_handle("1"))
    snap = snapshot(ws)
    assert snap.eta_s is None
    assert "ETA: after the first trial" in str(snap)


def test_html_rendering_for_notebooks(ws):
    html = snapshot(ws)._repr_html_()
    assert html.startswith("<div>") and "<table>" in html and "<td>t2</td>" in html
    assert "&lt;" not in html and "\x1b" not in html
    assert render_html(snapshot(ws)).count("<tr>") == 4  # header + three trials


def test_reader_is_incremental(ws):
    reader = LedgerReader(ws)
    first = {r.trial_id: r for r in reader.records()}
    assert len(first["t2"].epochs) == 2
    JobLedger(ws).record("t2", "epoch", attempt=1, epoch=3, values={"val_loss": 1.1})
    again = {r.trial_id: r for r in reader.records()}
    assert len(again["t2"].epochs) == 3
    assert sum(len(v) for v in reader._cache.values()) == 14  # every event file read once


def test_live_progress_non_tty_prints_on_change_only(ws):
    out = io.StringIO()
    live = LiveProgress(ws, interval_s=0.0, log_every_s=3600, stream=out)
    live.tick()
    live.tick()  # nothing changed: no second table
    assert out.getvalue().count("trial  ") == 1
    JobLedger(ws).record("t2", "finished", attempt=1, state="succeeded", metric_value=1.4, final=True)
    live.tick()
    assert out.getvalue().count("trial  ") == 2
    assert "\x1b" not in out.getvalue()


def test_rich_table_stable_columns_and_eta(ws):
    from tao_automl.reporting.progress import render_rich

    snap = snapshot(ws)
    plain = render_rich(snap, width=160)
    assert "\x1b" not in plain
    lines = plain.splitlines()
    assert lines[0].startswith("automl-test-0001 [running]") and "ETA ~" in lines[0]
    header = lines[1]
    assert header.split()[:7] == ["trial", "job", "status", "epoch", "current", "best", "elapsed"]
    # widths have floors: a short id does not shrink the columns between refreshes
    assert header.index("job") == 10 + 2 and header.index("status") - header.index("job") == 8 + 2
    assert any(ln.split()[:3] == ["t2", "102", "running"] for ln in lines[2:])
    coloured = render_rich(snap, width=160, color=True)
    assert "\x1b[31m" in coloured  # the failed trial in red
    assert "\x1b" not in render_rich(snap, width=160, color=False)


def test_watch_prints_changes_and_returns_when_the_run_ends(ws):
    import threading

    from tao_automl.reporting.progress import watch

    out = io.StringIO()

    def finish():
        time.sleep(0.6)
        JobLedger(ws).record("t2", "finished", attempt=1, state="succeeded", metric_value=1.4, final=True)
        time.sleep(0.4)
        ws.write_json("result.json", {"stopped_early": None})

    th = threading.Thread(target=finish)
    th.start()
    t0 = time.monotonic()
    why = watch(ws, interval_s=0.1, timeout_s=30, stream=out)
    th.join()
    assert why == "finished" and time.monotonic() - t0 < 10
    text = out.getvalue()
    assert text.count("automl-test-0001 [running]") >= 2  # printed again when t2 finished
    assert "automl-test-0001 [finished]" in text and "\x1b" not in text


def test_watch_is_bounded(ws):
    from tao_automl.reporting.progress import watch

    t0 = time.monotonic()
    assert watch(ws, interval_s=0.1, timeout_s=0.5, stream=io.StringIO()) == "timeout"
    assert time.monotonic() - t0 < 5


@pytest.fixture
def mo_ws(tmp_path):
    """A multi-objective run: val_loss and latency_ms (scale 10), both minimized."""
    ws = Workspace(tmp_path / "automl-mo-0001")
    ws.write_json("settings.json", {
        "created": time.time() - 100, "metric": "objective_score", "direction": "maximize",
        "settings": {"algorithm": "bayesian", "max_recommendations": 6, "max_concurrent": 2,
                     "objectives": [{"metric": "val_loss", "direction": "minimize", "weight": 1.0, "scale": 1.0},
                                    {"metric": "latency_ms", "direction": "minimize", "weight": 1.0,
                                     "scale": 10.0}]},
    })
    led = JobLedger(ws)

    def trial(tid, loss, lat, finished=True):
        led.record(tid, "planned", hyperparameters={"train.lr": loss})
        led.record(tid, "submitted", attempt=1, handle=_handle(f"j{tid}"))
        score = -loss - lat / 10
        led.record(tid, "epoch", attempt=1, epoch=1,
                   values={"val_loss": loss, "latency_ms": lat, "objective_score": score})
        if finished:
            led.record(tid, "finished", attempt=1, state="succeeded", metric_value=score, final=True)

    trial("t1", 0.2, 30.0)   # on the front (best loss)
    trial("t2", 0.5, 10.0)   # on the front (best latency)
    trial("t3", 0.6, 40.0)   # dominated by both
    trial("t4", 0.9, 20.0, finished=False)  # running: its newest values, never on the front
    return ws


def test_multi_objective_columns_front_and_hypervolume(mo_ws):
    snap = snapshot(mo_ws)
    assert snap.objectives == ["val_loss", "latency_ms"]
    # front {t1, t2} against the worst values (0.6, 40 / 10): 0.4*1 + 0.1*3 - overlap 0.1*1, by hand
    assert snap.hypervolume == pytest.approx(0.6) and snap.front_size == 2
    rows = {r["trial_id"]: r for r in snap.rows}
    assert rows["t4"]["status"] == "running"
    assert rows["t4"]["objectives"] == {"val_loss": 0.9, "latency_ms": 20.0}
    assert [rows[t]["front"] for t in ("t1", "t2", "t3", "t4")] == [True, True, False, False]
    for render in (render_text, lambda s: render_rich(s, width=200)):
        lines = render(snap).splitlines()
        assert "hypervolume 0.6 (front 2)" in lines[0]
        head = next(ln for ln in lines if ln.lstrip().startswith("trial"))
        cols = head.split()
        assert cols[:9] == ["trial", "job", "status", "epoch", "current", "best", "val_loss", "latency_ms",
                            "front"]
        body = {ln.split()[0]: ln.split() for ln in lines if ln.split() and ln.split()[0] in rows}
        assert body["t1"][6:9] == ["0.2", "30", "*"]
        assert body["t2"][6:9] == ["0.5", "10", "*"]
        assert body["t3"][6:8] == ["0.6", "40"] and "*" not in body["t3"]
        assert body["t4"][6:8] == ["0.9", "20"] and "*" not in body["t4"]
    html = render_html(snap)
    assert "<th>val_loss</th><th>latency_ms</th><th>front</th>" in html


def test_one_metric_runs_have_no_objective_columns(ws):
    snap = snapshot(ws)
    assert snap.objectives is None and snap.hypervolume is None
    header = render_text(snap).splitlines()[2].split()
    assert "front" not in header and "hypervolume" not in render_text(snap)
