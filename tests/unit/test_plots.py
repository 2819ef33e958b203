"""Plots from a result dict, drawn by Optuna's visualisation: the study built
from the history, PNGs written to <workspace>/plots, plotly figures for HTML."""

from __future__ import annotations

import logging
import struct

import pytest

from tao_automl.reporting.plots import log_scale, plotly_figures, render_plots, to_study
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


ALL = ["contour.png", "learning_curves.png", "optimization_history.png", "parallel_coordinates.png",
       "param_importance.png", "slice.png"]


def test_study_mirrors_the_history(result):
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
    from optuna.trial import TrialState

    study = to_study(result)
    assert study.direction.name == "MINIMIZE"
    states = [t.state for t in study.trials]
    assert states == [TrialState.COMPLETE, TrialState.PRUNED, TrialState.COMPLETE, TrialState.FAIL,
                      TrialState.COMPLETE]
    assert [t.user_attrs["rec_id"] for t in study.trials] == ["t00", "t01", "t02", "t03", "t04"]
    assert study.best_trial.value == 0.6 and study.best_trial.params["train.lr"] == 3e-3
    d = study.trials[0].distributions
    assert d["train.lr"] == FloatDistribution(1e-4, 1.0, log=True)
    assert d["train.batch_size"] == IntDistribution(8, 64)
    assert d["model.activation"] == CategoricalDistribution(["relu", "tanh", "sigmoid"])
    assert study.trials[0].intermediate_values == {1: 1.5, 2: 1.2, 3: 1.0, 4: 0.9}
    assert study.trials[1].intermediate_values == {1: 1.4}


def test_log_scale_when_values_span_more_than_two_decades():
    assert not log_scale([1.0, 50.0])
    assert log_scale([0.01, 5.0])
    assert not log_scale([-1.0, 500.0])  # not all positive
    assert not log_scale([])


def test_all_plots_written_as_valid_pngs(tmp_path, result):
    ws = Workspace(tmp_path / "exp")
    paths = render_plots(ws, result)
    names = sorted(p.rsplit("/", 1)[-1] for p in paths)
    assert names == ALL
    for name in names:
        data = (tmp_path / "exp" / "plots" / name).read_bytes()
        w, h = _png_size(data)
        assert len(data) > 5000 and w > 300 and h > 200
        assert data.endswith(b"IEND\xaeB`\x82")


def test_plotly_figures_log_axis_integer_epochs_and_baseline(result):
    for t in result["history"]:  # values spanning three decades
        for e in t["metrics_per_epoch"]:
            e["val_loss"] = e["val_loss"] ** 8
        if t["metric_value"] is not None:
            t["metric_value"] = t["metric_value"] ** 8
    figs = plotly_figures(result)
    assert list(figs) == ["optimization_history", "parallel_coordinates", "slice", "contour",
                          "param_importance", "learning_curves"]
    lc = figs["learning_curves"].layout
    assert lc.yaxis.type == "log" and lc.xaxis.tickformat == "d" and lc.xaxis.title.text == "epoch"
    hist = figs["optimization_history"]
    assert hist.layout.yaxis.type == "log"
    labels = [a.text for a in hist.layout.annotations]
    assert any(t.startswith("baseline 1.1") for t in labels) and any(t.startswith("final evaluation") for t in labels)
    imp = figs["param_importance"]
    assert set(imp.data[0].y) <= {"train.lr", "model.activation", "train.batch_size"}


def test_reads_result_json_when_no_dict_given(tmp_path, result):
    ws = Workspace(tmp_path)
    ws.write_json("result.json", result)
    assert len(render_plots(str(tmp_path))) == len(ALL)


def test_empty_history_writes_nothing(tmp_path, result):
    result["history"] = []
    assert render_plots(Workspace(tmp_path), result) == []
    assert not (tmp_path / "plots").exists()
    assert plotly_figures(result) == {}


def test_too_few_trials_skip_the_plots_that_need_more(tmp_path, result):
    result["history"] = result["history"][:1]
    names = sorted(p.rsplit("/", 1)[-1] for p in render_plots(Workspace(tmp_path), result))
    assert names == ["learning_curves.png", "optimization_history.png", "parallel_coordinates.png", "slice.png"]


def test_one_broken_plot_is_logged_and_others_still_written(tmp_path, result, caplog, monkeypatch):
    import tao_automl.reporting.plots as plots

    real = plots._mpl

    def boom(name, study, r):
        if name == "parallel_coordinates":
            raise ValueError("bad data")
        return real(name, study, r)

    monkeypatch.setattr(plots, "_mpl", boom)
    with caplog.at_level(logging.WARNING, logger="tao_automl"):
        paths = plots.render_plots(Workspace(tmp_path), result)
    assert len(paths) == len(ALL) - 1
    assert any("plot parallel_coordinates failed: ValueError: bad data" in r.getMessage() for r in caplog.records)
