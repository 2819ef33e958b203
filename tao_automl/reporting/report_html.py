"""One self-contained HTML report of an experiment: summary, the launch
review, the results table and the interactive plots.

``tao-automl report WS --html`` writes ``<experiment>/report.html``.  The
plots are Optuna's plotly figures (:func:`tao_automl.reporting.plots.plotly_figures`);
plotly.js is embedded inline once, so the file works offline (no CDN) and
can be mailed or archived as is.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import Any

from tao_automl.config.statuses import TrialStatus
from tao_automl.reporting.plots import PLOTS, plotly_figures
from tao_automl.reporting.results import fmt_value as _fmt
from tao_automl.reporting.review_render import render_review
from tao_automl.store.workspace import Workspace

__all__ = ["render_html_report", "write_html_report"]

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:1200px;
color:#222;padding:0 1rem}
h1{font-size:1.5rem}h2{font-size:1.2rem;border-bottom:1px solid #ddd;padding-bottom:.2rem;margin-top:2rem}
table{border-collapse:collapse;font-size:.85rem}td,th{padding:.25rem .6rem;border-bottom:1px solid #eee;
text-align:left}th{background:#f5f5f5}tr.best td{background:#eef8ee;font-weight:600}
td.failed{color:#b00}pre{background:#f8f8f8;padding:.8rem;overflow-x:auto;font-size:.78rem}
.summary td:first-child{color:#555}.plot{margin:1rem 0}.muted{color:#777}
"""


def _esc(v: Any) -> str:
    return html.escape(_fmt(v))


def _summary(r: Mapping[str, Any]) -> str:
    b, f, best = r.get("baseline") or {}, r.get("final_evaluation") or {}, r.get("best") or {}
    pr = r.get("progress") or {}
    base_what = "defaults run" if b.get("source") == "defaults" else "evaluate"
    rows = [
        ("algorithm", r.get("algorithm")),
        ("metric", f"{r.get('metric')} ({r.get('direction')})"),
        ("trials", f"{pr.get('completed')} succeeded, {pr.get('failed')} failed, {pr.get('total')} total"),
        ("baseline", f"{_fmt(b.get('metric_value'))} ({b.get('status')}, {base_what}"
                     f"{', job ' + str(b['job_id']) if b.get('job_id') else ''})"
                     + (f": {b['reason']}" if b.get("reason") else "")),
        ("best trial", f"{_fmt(best.get('metric_value'))} ({best.get('rec_id')}, job {best.get('job_id')})"
         if best else "none (no trial succeeded)"),
        ("final evaluation", f"{_fmt(f.get('metric_value'))} ({f.get('status')})"
                             + (f": {f['reason']}" if f.get("reason") else "")),
        ("improvement over baseline", _fmt(f.get("improvement"))),
        ("checkpoint", best.get("checkpoint") if best else None),
        ("elapsed", f"{float(r.get('elapsed_s') or 0):.1f} s"),
        ("stopped early", r.get("stopped_early")),
        ("workspace", r.get("workspace")),
    ]
    body = "".join(f"<tr><td>{html.escape(k)}</td><td>{_esc(v)}</td></tr>" for k, v in rows if v is not None)
    return f'<table class="summary">{body}</table>'


def _results_table(r: Mapping[str, Any]) -> str:
    hist = list(r.get("history") or [])
    names = sorted({k for t in hist for k in t.get("hyperparameters") or {}})
    best_id = (r.get("best") or {}).get("rec_id")
    cols = ["trial", "job", "status", r.get("metric") or "metric", "epochs", "duration s", *names, "why"]
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in cols)
    rows = []
    for t in sorted(hist, key=lambda t: (t.get("started_at") or 0, str(t.get("rec_id")))):
        hp = t.get("hyperparameters") or {}
        why = t.get("failure_reason") or ""
        if t.get("failure_message"):
            why += f": {str(t['failure_message'])[-120:]}"
        cells = [t.get("rec_id"), t.get("job_id"), t.get("status"), t.get("metric_value"),
                 t.get("epochs_completed"), t.get("duration_s"), *(hp.get(n) for n in names), why or None]
        cls = ' class="best"' if t.get("rec_id") == best_id else ""
        tds = "".join(f'<td{" class=failed" if t.get("status") == TrialStatus.FAILED and i == 2 else ""}>{_esc(c)}</td>'
                      for i, c in enumerate(cells))
        rows.append(f"<tr{cls}>{tds}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _plots(r: Mapping[str, Any]) -> str:
    try:
        figs = plotly_figures(r)
    except ImportError as exc:
        return f'<p class="muted">plots unavailable: {html.escape(str(exc))} (pip install \'tao-automl[plots]\')</p>'
    parts = []
    first = True
    for name, fig in figs.items():
        div = fig.to_html(full_html=False, include_plotlyjs=bool(first), default_height="480px",
                          config={"displaylogo": False}, div_id=f"plot-{name}")
        first = False
        parts.append(f'<div class="plot"><h3>{html.escape(PLOTS.get(name, name))}</h3>{div}</div>')
    return "".join(parts) or '<p class="muted">no plot: no trial has a metric yet</p>'


def render_html_report(result: Mapping[str, Any], review: Mapping[str, Any] | None = None) -> str:
    """The report as one HTML string (plotly.js inline)."""
    title = f"AutoML report {result.get('session_id')}"
    review_html = '<p class="muted">no review.json in this experiment</p>'
    if review:
        review_html = f"<pre>{html.escape(render_review(review, color=False, width=120))}</pre>"
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>"
        f"<h1>{html.escape(title)}</h1>"
        f"<h2>Summary</h2>{_summary(result)}"
        f"<h2>Trials</h2>{_results_table(result)}"
        f"<h2>Plots</h2>{_plots(result)}"
        f"<h2>Launch review</h2>{review_html}"
        "</body></html>\n"
    )


def write_html_report(ws: Workspace | str, result: Mapping[str, Any] | None = None) -> str:
    """Write ``<experiment>/report.html``; returns its path."""
    ws = ws if isinstance(ws, Workspace) else Workspace(ws)
    r = result if result is not None else ws.read_json("result.json")
    review = ws.read_json("review.json", default=None)
    return ws.write_text("report.html", render_html_report(r, review))
