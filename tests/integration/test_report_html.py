"""The HTML report opened in a real headless Chromium: it renders offline
(plotly.js inline, no CDN), draws every plot, and logs no console error.

Chromium is a Debian package (`apt-get install chromium`; `.ci/run` installs
it when missing); without it the browser tests are skipped with that reason.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tao_automl.reporting.report_html import render_html_report, write_html_report
from tao_automl.store.workspace import Workspace

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (Debian: apt-get install -y chromium)")


def _trial(i, status, value, lr, act, vals):
    return {
        "rec_id": f"rec-{i:03d}", "job_id": str(100 + i), "status": status, "metric_value": value,
        "hyperparameters": {"train.lr": lr, "model.activation": act, "train.batch_size": 8 * (i + 1)},
        "metrics_per_epoch": [{"epoch": e + 1, "val_loss": v} for e, v in enumerate(vals)],
        "started_at": 1000.0 + i, "finished_at": 1010.0 + i, "duration_s": 10.0, "epochs_completed": len(vals),
        "failure_reason": "program" if status == "failed" else None,
        "failure_message": "Traceback: <boom> & friends" if status == "failed" else None,
        "adjustments": [],
    }


@pytest.fixture
def result():
    history = [
        _trial(0, "succeeded", 0.9, 1e-3, "relu", [1.5, 1.2, 1.0, 0.9]),
        _trial(1, "stopped", 1.4, 1e-1, "tanh", [1.4]),
        _trial(2, "succeeded", 0.6, 3e-3, "relu", [1.3, 0.9, 0.7, 0.6]),
        _trial(3, "failed", None, 0.5, "sigmoid", []),
        _trial(4, "succeeded", 0.7, 5e-3, "tanh", [1.2, 1.0, 0.8, 0.7]),
    ]
    return {
        "session_id": "s-html", "algorithm": "bayesian", "metric": "val_loss", "direction": "minimize",
        "workspace": "/tmp/s-html", "elapsed_s": 12.5, "history": history,
        "progress": {"completed": 3, "failed": 1, "total": 5},
        "best": {"rec_id": "rec-002", "job_id": "102", "metric_value": 0.6, "checkpoint": "/x/model_epoch_004.pth"},
        "baseline": {"status": "measured", "metric_value": 1.1, "source": "defaults", "job_id": "99"},
        "final_evaluation": {"status": "measured", "metric_value": 0.62, "improvement": 0.48},
        "search_space": [
            {"name": "train.lr", "type": "float", "minimum": 1e-4, "maximum": 1.0, "log": True, "default": 0.01},
            {"name": "model.activation", "type": "categorical", "options": ["relu", "tanh", "sigmoid"],
             "default": "relu"},
            {"name": "train.batch_size", "type": "int", "minimum": 8, "maximum": 64, "log": False, "default": 16},
        ],
    }


def test_report_is_self_contained_and_escapes_text(result):
    page = render_html_report(result)
    assert page.startswith("<!DOCTYPE html>")
    assert not re.search(r"<script[^>]+src=", page)  # plotly.js inline: no CDN, works offline
    assert page.count("Plotly.newPlot(") >= 6
    assert "&lt;boom&gt; &amp; friends" in page and "<boom>" not in page
    assert '<tr class="best"><td>rec-002</td>' in page
    assert "1.1 (measured, defaults run, job 99)" in page


def _chromium(url: str, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [CHROMIUM, "--headless", "--disable-gpu", "--no-sandbox", "--no-first-run", "--enable-logging=stderr",
         "--v=0", "--virtual-time-budget=10000", f"--user-data-dir={Path(url[7:]).parent / '.chromium'}",
         *extra, url],
        capture_output=True, text=True, timeout=120)


def _console(stderr: str) -> list[str]:
    return [ln for ln in stderr.splitlines() if ":CONSOLE" in ln]


@needs_chromium
def test_console_errors_are_detected(tmp_path):
    """The check below can fail: a page that throws is caught."""
    page = tmp_path / "bad.html"
    page.write_text("<!DOCTYPE html><html><body><script>throw new Error('boom')</script></body></html>")
    out = _chromium(page.as_uri(), "--dump-dom")
    assert any("Uncaught Error: boom" in ln for ln in _console(out.stderr)), out.stderr[-2000:]


@needs_chromium
def test_report_renders_in_chromium_without_console_errors(tmp_path, result):
    ws = Workspace(tmp_path / "exp")
    path = write_html_report(ws, result)
    out = _chromium(Path(path).as_uri(), "--dump-dom")
    assert out.returncode == 0, out.stderr[-2000:]
    assert _console(out.stderr) == [], _console(out.stderr)
    dom = out.stdout
    # plotly drew every figure (its SVG roots exist only after the scripts ran)
    assert dom.count('class="main-svg"') >= 6, dom[:500]
    for name in ("optimization_history", "parallel_coordinates", "slice", "contour", "param_importance",
                 "learning_curves"):
        assert f'id="plot-{name}"' in dom
    shot = tmp_path / "report.png"
    s = _chromium(Path(path).as_uri(), f"--screenshot={shot}", "--window-size=1280,2400")
    assert shot.is_file() and shot.stat().st_size > 20000, s.stderr[-2000:]
    if os.environ.get("TAO_AUTOML_KEEP_SCREENSHOT"):
        shutil.copy(shot, os.environ["TAO_AUTOML_KEEP_SCREENSHOT"])
