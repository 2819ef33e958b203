"""Live progress of an experiment, rendered from its job ledger.

Because the table is built from the workspace files only, the live display
of a running search and ``tao-automl status WORKSPACE`` (or
``AutoMLRunner.render_status``) from another process show the same thing:
per trial id the platform job id, status, current and best metric,
hyperparameters and elapsed time; overall progress with an ETA once at least
one trial has finished.

>>> print(render_status("automl_workspace/automl-20261123-004512-ab12"))  # doctest: +SKIP
"""

from __future__ import annotations

import html
import os
import shutil
import sys
import time
from collections.abc import Mapping
from typing import Any

import attrs

from tao_automl.algorithms import ALGORITHMS
from tao_automl.config.objectives import Objective, hypervolume, pareto_indices
from tao_automl.config.statuses import TrialStatus
from tao_automl.errors import WorkspaceError
from tao_automl.reporting.collect import score_of, trial_result
from tao_automl.reporting.pareto import objective_values
from tao_automl.reporting.results import fmt_value
from tao_automl.store.ledger import JobLedger
from tao_automl.store.workspace import Workspace

__all__ = ["Snapshot", "LedgerReader", "snapshot", "render_text", "render_html", "render_status",
           "render_rich", "rich_table", "watch", "progress_callback", "resolve_experiment"]

TERMINAL = (TrialStatus.SUCCEEDED, TrialStatus.FAILED, TrialStatus.STOPPED)


@attrs.define(kw_only=True)
class Snapshot:
    """What the progress table shows; ``str()`` is the text table and
    ``_repr_html_`` the notebook rendering."""

    session_id: str
    metric: str | None
    direction: str | None
    budget: int | None
    max_concurrent: int
    rows: list[dict[str, Any]]
    started_at: float | None
    now: float
    finished: bool = False
    stopped_early: str | None = None
    selection: str = "best"  # checkpoint_selection: what a trial's score is
    #: multi-objective runs: the succeeded trials' front hypervolume so far and the front's size
    hypervolume: float | None = None
    front_size: int | None = None
    #: multi-objective runs: the objectives' metric names, one table column each (a row's values are
    #: ``row["objectives"]``; ``row["front"]`` marks the succeeded trials on the Pareto front)
    objectives: list[str] | None = None

    @property
    def counts(self) -> dict[str, int]:
        out = {str(k): 0 for k in (TrialStatus.SUCCEEDED, TrialStatus.FAILED, TrialStatus.STOPPED,
                                     TrialStatus.RUNNING, TrialStatus.PENDING)}
        for r in self.rows:
            out[r["status"]] = out.get(r["status"], 0) + 1
        return out

    @property
    def eta_s(self) -> float | None:
        """Remaining time: mean duration of finished trials over the work left,
        spread over ``max_concurrent`` slots.  ``None`` without timing data."""
        if self.finished:
            return 0.0
        done = [r["duration_s"] for r in self.rows if r["status"] in TERMINAL and r["duration_s"]]
        if not done or not self.budget:
            return None
        mean = sum(done) / len(done)
        running = [r for r in self.rows if r["status"] == TrialStatus.RUNNING]
        left = sum(max(0.0, mean - (r["elapsed_s"] or 0.0)) for r in running)
        not_started = max(0, self.budget - len([r for r in self.rows if r["status"] != TrialStatus.PENDING]))
        return (left + not_started * mean) / max(1, self.max_concurrent)

    @property
    def best(self) -> float | None:
        """The best trial's score, ranked as the result's ``best`` is
        (:func:`~tao_automl.reporting.collect.pick_best`: succeeded trials,
        else stopped ones; while nothing has ended, running ones)."""
        for statuses in ((TrialStatus.SUCCEEDED,), (TrialStatus.STOPPED,), (TrialStatus.RUNNING,)):
            pool = [r["best"] for r in self.rows if r["status"] in statuses and r["best"] is not None]
            best = None
            for v in pool:
                if best is None or _better(v, best, self.direction):
                    best = v
            if best is not None:
                return best
        return None

    def __str__(self) -> str:
        return render_text(self)

    def _repr_html_(self) -> str:
        return render_html(self)


class LedgerReader:
    """Incremental reader of ``ledger/``: event files are immutable, so each
    file is read once and cached; later calls only read new files."""

    def __init__(self, ws: Workspace) -> None:
        self.ws = ws
        self._cache: dict[str, dict[str, dict[str, Any]]] = {}

    def records(self) -> list[Any]:
        recs = []
        for tid in self.ws.listdir("ledger"):
            if tid.startswith("."):
                continue
            seen = self._cache.setdefault(tid, {})
            for name in self.ws.listdir(f"ledger/{tid}"):
                if name.endswith(".json") and not name.startswith(".") and name not in seen:
                    ev = self.ws.read_json(f"ledger/{tid}/{name}", default=None)
                    if isinstance(ev, dict):
                        seen[name] = ev
            rec = JobLedger._fold(tid, [seen[n] for n in sorted(seen)])
            if not rec.abandoned:  # unknown to the restored search: not part of the run
                recs.append(rec)
        recs.sort(key=lambda r: (r.planned or {}).get("t", 0.0))
        return recs


def _better(a: float, b: float, direction: str | None) -> bool:
    return a > b if direction == "maximize" else a < b


def _row(rec: Any, metric: str | None, direction: str | None, now: float,
         selection: str = "best") -> dict[str, Any]:
    t = trial_result(rec, metric or "", direction, selection)
    vals = [float(e[metric]) for e in t.metrics_per_epoch
            if metric and isinstance(e.get(metric), (int, float))]
    current = vals[-1] if vals else t.metric_value
    # the trial's score, by the one rule (running trials too): never a value of its own
    best = None if t.status == TrialStatus.FAILED else score_of(rec, metric or "", direction, selection).value
    elapsed = t.duration_s
    if elapsed is None and t.started_at:
        elapsed = now - t.started_at
    return {"trial_id": t.rec_id, "job_id": t.job_id, "status": t.status, "current": current,
            "best": best, "epochs": t.epochs_completed, "hyperparameters": t.hyperparameters,
            "elapsed_s": elapsed, "duration_s": t.duration_s, "attempts": t.attempts,
            "failure_reason": t.failure_reason}


def resolve_experiment(path: str | os.PathLike[str], storage_options: dict | None = None) -> Workspace:
    """The experiment folder for ``path``: itself if it holds ``settings.json``,
    else its most recent experiment sub-folder (``workspace_dir`` given)."""
    ws = Workspace(path, storage_options)
    if ws.exists("settings.json"):
        return ws
    sessions = [n for n in ws.listdir() if ws.exists(f"{n}/settings.json")]
    if not sessions:
        raise WorkspaceError("not an AutoML experiment folder", file=ws.root,
                             expected="a folder with settings.json (or a workspace_dir "
                                      "holding such folders)")
    sid = max(sessions, key=lambda n: ws.read_json(f"{n}/settings.json").get("created", 0))
    return ws.child(sid)


def snapshot(ws: Workspace, reader: LedgerReader | None = None, *,
             settings: Mapping[str, Any] | None = None) -> Snapshot:
    """Build the table data from an experiment folder (any process)."""
    settings = settings if settings is not None else ws.read_json("settings.json", default={}) or {}
    s = settings.get("settings") or {}
    metric, direction = settings.get("metric") or s.get("metric"), settings.get("direction")
    now = time.time()
    recs = (reader or LedgerReader(ws)).records()
    selection = s.get("checkpoint_selection") or "best"
    rows = [_row(r, metric, direction, now, selection) for r in recs]
    objs = _objectives(s.get("objectives"))
    hv, front = _front(recs, rows, objs, metric, direction, selection) if objs else (None, None)
    result = ws.read_json("result.json", default=None) if ws.exists("result.json") else None
    algorithm = ALGORITHMS.get(str(s.get("algorithm") or "").strip().lower())  # None: not registered here
    budget = algorithm.trial_budget(s) if algorithm is not None else s.get("max_recommendations")
    return Snapshot(session_id=ws.root.rstrip("/").rsplit("/", 1)[-1], metric=metric,
                    direction=direction, budget=budget, max_concurrent=int(s.get("max_concurrent") or 1),
                    rows=rows, started_at=settings.get("created"), now=now,
                    finished=result is not None,
                    stopped_early=(result or {}).get("stopped_early"), selection=selection,
                    hypervolume=hv, front_size=front, objectives=[o.metric for o in objs] if objs else None)


def _objectives(raw: Any) -> list[Objective] | None:
    """The run's objectives from ``settings.json`` (None: a one-metric run)."""
    if not isinstance(raw, list) or len(raw) < 2 or not all(isinstance(o, Mapping) for o in raw):
        return None
    try:
        return [Objective(o["metric"], o["direction"], float(o.get("weight", 1.0)), float(o.get("scale", 1.0)),
                          None if o.get("reference") is None else float(o["reference"]))
                for o in raw]
    except (KeyError, TypeError, ValueError):
        return None


def _live_values(t: Any, objs: list[Objective]) -> dict[str, float] | None:
    """A running trial's objectives: the newest epoch that reported all of them."""
    names = [o.metric for o in objs]
    for e in reversed(t.metrics_per_epoch):
        if all(isinstance(e.get(n), (int, float)) for n in names):
            return {n: float(e[n]) for n in names}
    return None


def _front(recs: list[Any], rows: list[dict[str, Any]], objs: list[Objective], metric: str | None,
           direction: str | None, selection: str) -> tuple[float | None, int | None]:
    """Every row's objective values (``row["objectives"]``: those of the epoch
    that earned its score; a running trial's newest), ``row["front"]`` for the
    succeeded trials on the Pareto front, and that front's hypervolume and size."""
    pts, on = [], []
    for rec, row in zip(recs, rows, strict=True):
        t = trial_result(rec, metric or "", direction, selection)
        ov = objective_values(t, objs, rec.outcome)
        if ov is None and row["status"] == TrialStatus.RUNNING:
            ov = _live_values(t, objs)
        row["objectives"], row["front"] = ov, False
        if row["status"] == TrialStatus.SUCCEEDED and ov:
            pts.append(ov)
            on.append(row)
    if not pts:
        return None, None
    idx = pareto_indices(objs, pts)
    for i in idx:
        on[i]["front"] = True
    return hypervolume(objs, pts), len(idx)


def _fmt_num(v: Any) -> str:
    return fmt_value(v, digits=4)


def _fmt_time(s: float | None) -> str:
    if s is None:
        return "-"
    s = int(round(s))
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m}:{sec:02d}"


def _short(name: str) -> str:
    return name.rsplit(".", 1)[-1]


def headline(snap: Snapshot) -> str:
    """One line: counts, best, elapsed and ETA."""
    c = snap.counts
    done = c["succeeded"] + c["failed"] + c["stopped"]
    total = f"/{snap.budget}" if snap.budget else ""
    best = snap.best
    elapsed = (snap.now - snap.started_at) if snap.started_at else None
    state = "finished" if snap.finished else "running"
    parts = [f"{snap.session_id} [{state}]", f"trials {done}{total} done",
             f"{c['succeeded']} ok, {c['failed']} failed, {c['stopped']} stopped, {c['running']} running",
             f"best {snap.metric or 'metric'}={_fmt_num(best)}", f"elapsed {_fmt_time(elapsed)}"]
    if snap.hypervolume is not None:
        parts.insert(3, f"hypervolume {_fmt_num(snap.hypervolume)} (front {snap.front_size})")
    if not snap.finished:
        eta = snap.eta_s
        parts.append(f"ETA ~{_fmt_time(eta)}" if eta is not None else "ETA: after the first trial")
    line = " | ".join(parts)
    if snap.stopped_early:
        line += f"\nstopped early: {snap.stopped_early}"
    return line


def _table(snap: Snapshot) -> tuple[list[str], list[list[str]]]:
    hp_names = sorted({k for r in snap.rows for k in r["hyperparameters"]})
    score = "best" if snap.selection == "best" else "score"  # the trial's score, by checkpoint_selection
    objs = snap.objectives or []  # multi-objective runs: one column per objective, then the front mark
    cols = ["trial", "job", "status", "epoch", "current", score, *objs, *(["front"] if objs else []),
            "elapsed", *map(_short, hp_names)]
    rows = []
    for r in snap.rows:
        ov = r.get("objectives") or {}
        mo = [*(_fmt_num(ov.get(n)) for n in objs), *(["*" if r.get("front") else ""] if objs else [])]
        rows.append([r["trial_id"], _fmt_num(r["job_id"]), r["status"], _fmt_num(r["epochs"]),
                     _fmt_num(r["current"]), _fmt_num(r["best"]), *mo, _fmt_time(r["elapsed_s"]),
                     *(_fmt_num(r["hyperparameters"].get(h)) for h in hp_names)])
    return cols, rows


def render_text(snap: Snapshot, width: int | None = None) -> str:
    """Plain-text table (no ANSI codes), clipped to ``width`` columns if given."""
    cols, rows = _table(snap)
    widths = [max(len(c), *(len(r[i]) for r in rows)) if rows else len(c) for i, c in enumerate(cols)]
    lines = [headline(snap), ""]
    fmt = "  ".join("{:<" + str(w) + "}" for w in widths)
    lines.append(fmt.format(*cols))
    lines.append("  ".join("-" * w for w in widths))
    lines += [fmt.format(*r) for r in rows]
    if not rows:
        lines.append("(no trial has started yet)")
    if width:
        lines = [ln if len(ln) <= width else ln[: width - 1] + "…" for ln in lines]
    return "\n".join(lines)


_STATUS_STYLE = {TrialStatus.SUCCEEDED: "green", TrialStatus.FAILED: "red", TrialStatus.STOPPED: "yellow",
                 TrialStatus.RUNNING: "cyan", TrialStatus.PENDING: "dim"}


def rich_table(snap: Snapshot) -> Any:
    """The table as a ``rich`` renderable: the headline (counts, best, elapsed,
    ETA) over one row per trial.  Column widths have floors so they do not jump
    between refreshes."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    cols, rows = _table(snap)
    floors = {"trial": 10, "job": 8, "status": 9, "epoch": 5, "current": 9, "best": 9, "elapsed": 7, "front": 5}
    numeric = {"epoch", "current", "best", "score", "elapsed", *(snap.objectives or [])}
    t = Table(box=None, pad_edge=False, padding=(0, 2, 0, 0), header_style="bold")
    for c in cols:
        t.add_column(c, min_width=floors.get(c, 8), no_wrap=True, justify="right" if c in numeric else "left")
    for r, raw in zip(rows, snap.rows, strict=True):
        t.add_row(*r, style=_STATUS_STYLE.get(raw["status"], ""))
    parts: list[Any] = [Text(headline(snap), style="bold"), t]
    if not rows:
        parts.append(Text("(no trial has started yet)", style="dim"))
    return Group(*parts)


def render_rich(snap: Snapshot, width: int | None = None, color: bool = False) -> str:
    """The ``rich`` table as text (ANSI colours only when ``color``)."""
    import io

    from rich.console import Console

    buf = io.StringIO()
    con = Console(file=buf, width=width or 200, force_terminal=color, no_color=not color,
                  color_system="standard" if color else None, highlight=False)
    con.print(rich_table(snap), crop=True, overflow="ellipsis")
    return "\n".join(ln.rstrip() for ln in buf.getvalue().rstrip().splitlines())


def watch(ws: Workspace, *, interval_s: float = 2.0, timeout_s: float = 86400.0, stream: Any = None) -> str:
    """Follow an experiment until it finishes (or ``timeout_s`` passes).

    On a terminal the ``rich`` table is redrawn in place; otherwise the text
    table is printed whenever a trial changes status.  Returns why it stopped:
    ``"finished"`` or ``"timeout"``.  Ctrl-C propagates (the CLI exits 0).
    """
    stream = stream or sys.stdout
    reader = LedgerReader(ws)
    settings = ws.read_json("settings.json", default={}) or {}
    deadline = time.monotonic() + timeout_s
    tty = bool(getattr(stream, "isatty", lambda: False)())
    if tty:
        from rich.console import Console
        from rich.live import Live

        console = Console(file=stream, no_color=bool(os.environ.get("NO_COLOR")))
        with Live(console=console, auto_refresh=False, transient=False) as live:
            while True:
                snap = snapshot(ws, reader, settings=settings)
                live.update(rich_table(snap), refresh=True)
                if snap.finished:
                    return "finished"
                if time.monotonic() >= deadline:
                    return "timeout"
                time.sleep(interval_s)
    last = None
    while True:
        snap = snapshot(ws, reader, settings=settings)
        key = (tuple((r["trial_id"], r["status"]) for r in snap.rows), snap.finished)
        if key != last:
            last = key
            stream.write(render_text(snap) + "\n\n")
            stream.flush()
        if snap.finished:
            return "finished"
        if time.monotonic() >= deadline:
            return "timeout"
        time.sleep(interval_s)


def render_html(snap: Snapshot) -> str:
    """HTML table for notebooks."""
    cols, rows = _table(snap)
    esc = html.escape
    head = "".join(f"<th>{esc(c)}</th>" for c in cols)
    body = "".join("<tr>" + "".join(f"<td>{esc(v)}</td>" for v in r) + "</tr>" for r in rows)
    return (f"<div><p><code>{esc(headline(snap))}</code></p>"
            f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>")


def render_status(workspace: str | os.PathLike[str], storage_options: dict | None = None) -> str:
    """The progress table of an experiment folder (or of the newest one in a workspace_dir)."""
    return render_text(snapshot(resolve_experiment(workspace, storage_options)))


def _in_notebook() -> bool:
    ipy = sys.modules.get("IPython")
    if ipy is None:
        return False
    try:
        shell = ipy.get_ipython()
    except Exception:  # noqa: BLE001
        return False
    return shell is not None and "IPKernelApp" in getattr(shell, "config", {})


class LiveProgress:
    """Re-renders the table at most every ``interval_s``: redrawn in place on a
    TTY, as an updating display in notebooks, and -- when stderr is a file or
    pipe -- printed only when a trial changes status (or every ``log_every_s``)."""

    def __init__(self, ws: Workspace, *, interval_s: float = 2.0, log_every_s: float = 60.0,
                 stream: Any = None) -> None:
        self.ws = ws
        self.interval_s = interval_s if not ws.uri else max(interval_s, 10.0)
        self.log_every_s = log_every_s
        self.stream = stream
        self._reader: LedgerReader | None = None
        self._settings: dict[str, Any] | None = None
        self._last = 0.0
        self._last_print = 0.0
        self._last_key: Any = None
        self._lines = 0
        self._display: Any = None

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_reader": None, "_display": None, "stream": None}

    def tick(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last < self.interval_s:
            return
        self._last = now
        try:
            if self._reader is None:
                self._reader = LedgerReader(self.ws)
                self._settings = self.ws.read_json("settings.json", default={}) or {}
            snap = snapshot(self.ws, self._reader, settings=self._settings)
        except Exception:  # noqa: BLE001 - a display never breaks a run
            return
        self._show(snap, now, force)

    def _show(self, snap: Snapshot, now: float, force: bool) -> None:
        stream = self.stream or sys.stderr
        if _in_notebook():
            from IPython.display import display

            if self._display is None:
                self._display = display(snap, display_id=True)
            else:
                self._display.update(snap)
            return
        if getattr(stream, "isatty", lambda: False)():
            width = shutil.get_terminal_size((120, 24)).columns
            # one column short of the terminal: a full-width line would auto-wrap and break the redraw
            text = render_rich(snap, width=max(40, width - 1), color=not os.environ.get("NO_COLOR"))
            clear = f"\x1b[{self._lines}F\x1b[J" if self._lines else ""
            stream.write(clear + text + "\n")
            stream.flush()
            self._lines = text.count("\n") + 1
            return
        key = tuple((r["trial_id"], r["status"]) for r in snap.rows)
        if force or key != self._last_key or now - self._last_print >= self.log_every_s:
            self._last_key, self._last_print = key, now
            stream.write(render_text(snap) + "\n\n")
            stream.flush()


def progress_callback(ws: Workspace, **kwargs: Any) -> Any:
    """A driver-side Ray Tune ``Callback`` showing :class:`LiveProgress`."""
    from ray.tune import Callback

    live = LiveProgress(ws, **kwargs)

    class _Progress(Callback):
        def on_step_end(self, iteration: int, trials: list, **info: Any) -> None:
            live.tick()

        def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            live.tick()

        def on_experiment_end(self, trials: list, **info: Any) -> None:
            live.tick(force=True)

    cb = _Progress()
    cb.live = live
    return cb
