"""The launch review as a person reads it: one screen of tables (``rich``).

The review dict (:func:`tao_automl.planning.review.build_review`) stays the data; this
module only renders it.  ``render_review(review)`` returns text: coloured on
a terminal, plain (no ANSI codes) when the output is a file or pipe or when
``NO_COLOR`` is set.

Shown: launch shape (model, platform, image, GPUs/nodes, workspace), data
(keys, paths, visibility where the jobs run, sample count), algorithm,
budget, concurrency, metric and direction, the search space (name, type,
range, log, default), the initial batch (one row per recommendation, only
the searched values), the estimate with its assumptions, the baseline (job
id, metric, record path, or its blocker), the final-evaluation plan, and the
blockers, highlighted.
"""

from __future__ import annotations

import io
import os
import sys
from collections.abc import Mapping
from typing import Any

__all__ = ["render_review", "use_color"]


def use_color(stream: Any = None) -> bool:
    """Colour only on a terminal, and never with ``NO_COLOR`` set."""
    if os.environ.get("NO_COLOR"):
        return False
    stream = stream if stream is not None else sys.stdout
    return bool(getattr(stream, "isatty", lambda: False)())


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def _bracket_text(b: Mapping[str, Any]) -> str:
    """One Hyperband bracket of the review: its rungs as configs x epochs."""
    rungs = " -> ".join(f"{r.get('configs')} x {r.get('epochs')} ep" for r in b.get("rungs") or [])
    return f"{b.get('bracket')}: {rungs} ({b.get('jobs')} jobs, {b.get('epochs')} epochs)"


def _duration(s: float | None) -> str:
    if s is None:
        return "-"
    s = float(s)
    if s < 120:
        return f"{s:.0f} s"
    if s < 7200:
        return f"{s / 60:.0f} min"
    if s < 2 * 86400:
        return f"{s / 3600:.1f} h"
    return f"{s / 86400:.1f} days"


def _short(name: str, others: list[str]) -> str:
    """The last dotted part, unless two parameters share it."""
    last = name.rsplit(".", 1)[-1]
    return last if sum(1 for o in others if o.rsplit(".", 1)[-1] == last) == 1 else name


def _range(row: Mapping[str, Any]) -> str:
    if row.get("options") is not None:
        opts = [_fmt(o) for o in row["options"]]
        text = "{" + ", ".join(opts) + "}"
        return text if len(text) <= 40 else "{" + ", ".join(opts[:4]) + f", ... ({len(opts)})" + "}"
    return f"[{_fmt(row.get('minimum'))}, {_fmt(row.get('maximum'))}]"


def _baseline_lines(review: Mapping[str, Any]) -> tuple[list[tuple[str, str]], str | None]:
    """(label, value) rows for the baseline and an optional blocker text."""
    plan = review.get("baseline_plan") or {}
    measured = review.get("baseline")
    mode = plan.get("mode") or ("checkpoint" if plan.get("enabled") else "off")
    what = {"defaults": f"one '{plan.get('action')}' run with the schema's default values",
            "checkpoint": f"'{plan.get('action')}' on {plan.get('checkpoint') or 'the starting checkpoint'}",
            "off": "none (automl_settings baseline: false): no impact baseline"}.get(mode, str(mode))
    rows = [("baseline", what)]
    if mode == "off":
        return rows, None
    if not measured:
        if mode != "off":
            rows.append(("record", str(plan.get("record_path"))))
            rows.append(("status", "measured when the run starts"))
        return rows, None
    status = measured.get("status")
    rows.append(("status", f"{status}" + (" (reused: measured earlier with the same inputs)"
                                          if measured.get("reused") else "")))
    if measured.get("metric_value") is not None:
        rows.append(("metric", f"{review.get('metric')} = {_fmt(measured.get('metric_value'))}"))
    rows.append(("job id", _fmt(measured.get("job_id"))))
    rows.append(("record", _fmt(measured.get("record") or measured.get("record_path"))))
    blocker = None
    if status in ("failure", "metric_missing", "callback_error", "unavailable", "not_run"):
        blocker = (f"baseline {status}: {measured.get('reason')} -- fix it, or set automl_settings "
                   "baseline: false (no impact baseline) or baseline: defaults (models trained from scratch)")
    return rows, blocker


def render_review(review: Mapping[str, Any], *, color: bool | None = None, width: int | None = None) -> str:
    """The review as text tables; ``color=None`` decides with :func:`use_color`."""
    from rich import box
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    color = use_color() if color is None else color
    if width is None:
        import shutil

        width = max(80, min(160, shutil.get_terminal_size((120, 40)).columns))
    buf = io.StringIO()
    con = Console(file=buf, width=width, force_terminal=color, no_color=not color,
                  color_system="standard" if color else None, highlight=False, emoji=False)

    def kv(title: str, rows: list[tuple[str, str]]) -> None:
        t = Table(title=title, title_justify="left", title_style="bold", box=None, show_header=False,
                  padding=(0, 2, 0, 0))
        t.add_column(style="cyan", no_wrap=True)
        t.add_column(overflow="fold")
        for k, v in rows:
            t.add_row(k, v)
        con.print(t)
        con.print()

    launch = review.get("launch") or {}
    blockers = list(review.get("blockers") or [])
    base_rows, base_blocker = _baseline_lines(review)
    if base_blocker:
        blockers.append(base_blocker)

    con.print(Text(f"AutoML launch review: {review.get('model')}", style="bold"))
    con.print()
    gpus = launch.get("gpu_count")
    kv("Launch", [
        ("model", f"{launch.get('model')} ({launch.get('network_arch') or '-'}), action {launch.get('action')}"),
        ("platform", str(launch.get("platform"))),
        ("image", _fmt(launch.get("image"))),
        ("shape", f"{f'{gpus} GPU(s)' if gpus else 'no GPU'} x {_fmt(launch.get('num_nodes'))} node(s) per job"),
        ("workspace", _fmt(launch.get("workspace"))),
        ("start from", _fmt(launch.get("base_checkpoint")) if launch.get("base_checkpoint") else "scratch"),
    ])

    checks = {c.get("path"): c for c in review.get("path_checks") or [] if isinstance(c, Mapping)}
    data = Table(box=box.SIMPLE_HEAD, show_edge=False)
    for c in ("source / key", "path", "visible where jobs run"):
        data.add_column(c, overflow="fold")
    for name, uri in (launch.get("datasets") or {}).items():
        for u in uri if isinstance(uri, list) else [uri]:
            c = checks.pop(str(u), None)
            data.add_row(str(name), str(u), _check_text(c))
    for c in checks.values():
        data.add_row(str(c.get("key")), str(c.get("path")), _check_text(c))
    con.print(Text("Data", style="bold"))
    if data.row_count:
        con.print(data)
    else:
        con.print("  no dataset paths given (the spec template's data settings are used)")
    if launch.get("train_sample_count"):
        con.print(f"  train samples: {launch['train_sample_count']}")
    con.print()

    budget = review.get("budget") or {}
    kv("Search", [
        ("algorithm", str(review.get("algorithm"))),
        ("metric", f"{review.get('metric')} ({review.get('direction')})"),
        *(("objective", _objective_text(o)) for o in review.get("objectives") or []),
        ("budget", ", ".join(f"{k}={_fmt(v)}" for k, v in budget.items()
                             if k not in ("max_concurrent", "seed", "brackets")) or "-"),
        *(("bracket", _bracket_text(b)) for b in budget.get("brackets") or [] if isinstance(b, dict)),
        ("concurrency", f"{review.get('max_concurrent')} job(s) at once"),
        ("seed", _fmt(review.get("seed"))),
    ])

    space = review.get("search_space") or []
    con.print(Text(f"Search space ({len(space)} parameters)", style="bold"))
    st = Table(box=box.SIMPLE_HEAD, show_edge=False)
    for c in ("name", "type", "range", "log", "default"):
        st.add_column(c, overflow="fold")
    for row in space:
        st.add_row(str(row.get("name")), str(row.get("type")), _range(row),
                   "log" if row.get("log") else "", _fmt(row.get("default")))
    con.print(st)
    excluded = review.get("excluded") or {}
    if excluded:
        names = list(excluded)
        shown = ", ".join(names[:6]) + (f", ... ({len(names)} in all)" if len(names) > 6 else "")
        con.print(f"  not searched: {shown} (reasons in the yaml/json review)")
    con.print()

    recs = review.get("recommendations") or []
    names = [r.get("name") for r in space]
    con.print(Text(f"Initial batch ({len(recs)} recommendation(s), searched values only)", style="bold"))
    rt = Table(box=box.SIMPLE_HEAD, show_edge=False)
    rt.add_column("rec")
    for n in names:
        rt.add_column(_short(str(n), [str(x) for x in names]), overflow="fold")
    if any(r.get("adjustments") for r in recs):
        rt.add_column("adjusted", overflow="fold")
    for r in recs:
        vals = r.get("overrides") or {}
        cells = [str(r.get("rec_id")), *(_fmt(vals.get(n)) for n in names)]
        if rt.columns[-1].header == "adjusted":
            cells.append("; ".join(r.get("adjustments") or []))
        rt.add_row(*cells)
    con.print(rt)
    con.print()

    est = review.get("estimate") or {}
    kv("Estimate", [
        ("per trial", _duration(est.get("per_trial_s"))),
        ("total", f"{_duration(est.get('total_s'))} (~{_fmt(est.get('full_trial_equivalents'))} full trials)"),
        *(("assumes", a) for a in est.get("assumptions") or []),
    ])

    kv("Baseline", base_rows)

    fin = review.get("final_evaluation_plan") or {}
    kv("Final evaluation", [
        ("plan", f"'{fin.get('action')}' on the {fin.get('checkpoint')}" if fin.get("enabled") and fin.get("action")
         else ("none (automl_settings final_eval: false)" if not fin.get("enabled") else "no evaluate action: skipped")),
        ("metric", f"{fin.get('metric') or review.get('metric')} ({review.get('direction')})"),
        ("record", _fmt(fin.get("record_path"))),
    ])

    for note in review.get("notes") or []:
        con.print(Text(f"note: {note}", style="yellow"))
    if blockers:
        con.print(Text(f"BLOCKERS ({len(blockers)}): the run will refuse to start", style="bold red"))
        for b in blockers:
            con.print(Text(f"  x {b}", style="red"))
    else:
        con.print(Text("no blockers", style="bold green"))
    return "\n".join(line.rstrip() for line in buf.getvalue().rstrip().splitlines()) + "\n"


def _check_text(c: Mapping[str, Any] | None) -> str:
    if not c:
        return "not checked (URI or not a path)"
    state = c.get("state")
    where = f" ({c.get('where')})" if c.get("where") else ""
    if state == "readable":
        return f"readable{where}"
    return f"{state.upper() if state == 'unreadable' else state}{where}: {c.get('reason') or ''}"


def _objective_text(o: Mapping[str, Any]) -> str:
    """``latency_ms (minimize), weight 1, scale 10, reference 40``."""
    ref = o.get("reference")
    return (f"{o.get('metric')} ({o.get('direction')}), weight {_fmt(o.get('weight'))}, "
            f"scale {_fmt(o.get('scale'))}, reference "
            + (_fmt(ref) if ref is not None else "the worst value seen"))
