"""Plots from a result dict: PNGs written to <workspace>/plots, valid and non-empty."""

from __future__ import annotations

import logging
import struct

import pytest

from tao_automl.reporting.plots import importance, render_plots, spearman
from tao_automl.store.workspace import Workspace

pytest.importorskip("matplotlib")

PNG = b"\x89PNG\r\n\x1a\n"


def _trial(i, status, value, lr, act, epochs, vals):
    return {
        "rec_id": f"t{i:02d}", "job_id": str(100 + i), "status": status, "metric_value": value,
        "hyperparameters": {"train.lr": lr, "model.activation": act, "train.batch_size": 8 * (i + 1)},
        "metrics_per_epoch": [{"epoch": e + 1, "attempt": 1, "val_loss": v} for e, v in enumerate(vals[:epochs])],
        "started_at": 1000.0 + i, "finished_at": 1010.0 + i, "duration_s": 10.0,
        "failure_reason": "program" if status == "failed" else None,
    }


@pytest.fixture
def result():
    history = [
        _trial(0, "succeeded", 0.9, 1e-3, "relu", 4, [1.5, 1.2, 1.0, 0.9]),
        _trial(1, "stopped", 1.4, 1e-1, "tanh", 1, [1.4]),          # early-stopped by ASHA
        _trial(2, "succeeded", 0.6, 3e-3, "relu", 4, [1.3, 0.9, 0.7, 0.6]),
        _trial(3, "failed", None, 0.5, "sigmoid", 0, []),
        _trial(4, "succeeded", 0.7, 5e-3, "tanh", 4, [1.2, 1.0, 0.8, 0.7]),
    ]
    return {
        "session_id": "s-plots", "algorithm": "asha", "metric": "val_loss", "direction": "minimize",
        "history": history,
        "baseline": {"status": "succeeded", "metric_value": 1.1},
        "final_evaluation": {"status": "succeeded", "metric_value": 0.62},
        "search_space": [
            {"name": "train.lr", "type": "float", "minimum": 1e-4, "maximum": 1.0, "log": True},
            {"name": "model.activation", "type": "categorical", "options": ["relu", "tanh", "sigmoid"]},
            {"name": "train.batch_size", "type": "int", "minimum": 8, "maximum": 64, "log": False},
        ],
    }


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == PNG
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def test_all_plots_written_as_valid_pngs(tmp_path, result):
    ws = Workspace(tmp_path / "exp")
    paths = render_plots(ws, result)
    names = sorted(p.rsplit("/", 1)[-1] for p in paths)
    assert names == ["learning_curves.png", "optimization_history.png", "parallel_coordinates.png",
                     "param_importance.png"]
    for name in names:
        data = (tmp_path / "exp" / "plots" / name).read_bytes()
        w, h = _png_size(data)
        assert len(data) > 5000 and w > 300 and h > 200
        assert data.endswith(b"IEND\xaeB`\x82")


def test_reads_result_json_when_no_dict_given(tmp_path, result):
    ws = Workspace(tmp_path)
    ws.write_json("result.json", result)
    assert len(render_plots(str(tmp_path))) == 4


def test_empty_history_writes_nothing(tmp_path, result):
    result["history"] = []
    assert render_plots(Workspace(tmp_path), result) == []
    assert not (tmp_path / "plots").exists()


def test_one_broken_plot_is_logged_and_others_still_written(tmp_path, result, caplog, monkeypatch):
    import tao_automl.reporting.plots as plots

    def boom(ws, r):
        raise ValueError("bad data")

    monkeypatch.setattr(plots, "plot_parallel", boom)
    with caplog.at_level(logging.WARNING, logger="tao_automl"):
        paths = plots.render_plots(Workspace(tmp_path), result)
    assert len(paths) == 3
    assert any("plot_parallel failed: ValueError: bad data" in r.getMessage() for r in caplog.records)


def test_spearman_and_importance(result):
    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    assert spearman([1, 1, 1], [1, 2, 3]) is None            # constant: undefined
    assert spearman([1, 2], [1, 2]) is None                  # too few points
    imp = importance(result)
    # trials with a metric: lr 1e-3, 1e-1, 3e-3, 5e-3 vs 0.9, 1.4, 0.6, 0.7
    assert set(imp) == {"train.lr", "model.activation", "train.batch_size"}
    assert all(0.0 <= v <= 1.0 for v in imp.values())
    assert imp["train.lr"] == pytest.approx(abs(spearman([1e-3, 1e-1, 3e-3, 5e-3], [0.9, 1.4, 0.6, 0.7])))
