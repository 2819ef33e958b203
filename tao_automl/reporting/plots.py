"""PNG plots of a finished (or running) experiment, from its result dict.

Written to ``<workspace>/plots/``:

``optimization_history.png``  metric per trial in start order, running best,
                              baseline (and final evaluation) lines
``parallel_coordinates.png``  hyperparameters (normalised axes) coloured by metric
``learning_curves.png``       metric per epoch for every trial (early stops visible)
``param_importance.png``      |Spearman rank correlation| of each hyperparameter
                              with the metric (a cheap proxy, labelled as such)

matplotlib (the ``plots`` extra) is imported lazily with the Agg backend.
"""

from __future__ import annotations

import io
import logging
import math
from collections.abc import Mapping
from typing import Any

from tao_automl.store.workspace import Workspace

__all__ = ["render_plots", "spearman"]

log = logging.getLogger("tao_automl")

STATUS_COLORS = {"succeeded": "tab:blue", "stopped": "tab:orange", "failed": "tab:red",
                 "running": "tab:green", "pending": "tab:gray"}


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _ranks(xs: list[float]) -> list[float]:
    order = sorted(range(len(xs)), key=lambda i: xs[i])
    ranks = [0.0] * len(xs)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and xs[order[j + 1]] == xs[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2.0
        i = j + 1
    return ranks


def spearman(xs: list[float], ys: list[float]) -> float | None:
    """Spearman's rank correlation (average ranks for ties); ``None`` if undefined."""
    if len(xs) < 3 or len(xs) != len(ys):
        return None
    rx, ry = _ranks(xs), _ranks(ys)
    mx, my = sum(rx) / len(rx), sum(ry) / len(ry)
    cov = sum((a - mx) * (b - my) for a, b in zip(rx, ry, strict=True))
    vx = sum((a - mx) ** 2 for a in rx)
    vy = sum((b - my) ** 2 for b in ry)
    if vx == 0 or vy == 0:
        return None
    return cov / math.sqrt(vx * vy)


def _order(history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(history, key=lambda t: (t.get("started_at") or math.inf, t.get("rec_id")))


def _log_scale(values: list[float]) -> bool:
    pos = [v for v in values if v is not None]
    return bool(pos) and min(pos) > 0 and max(pos) / min(pos) > 1e3


def _save(ws: Workspace, fig: Any, name: str) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    _plt().close(fig)
    return ws.write_bytes(f"plots/{name}", buf.getvalue())


def _better(a: float, b: float, direction: str) -> bool:
    return a > b if direction == "maximize" else a < b


def plot_history(ws: Workspace, r: Mapping[str, Any]) -> str:
    plt = _plt()
    hist = _order(list(r["history"]))
    metric, direction = r["metric"], r["direction"]
    fig, ax = plt.subplots(figsize=(8, 4.5))
    xs = list(range(1, len(hist) + 1))
    running, best = [], None
    for x, t in zip(xs, hist, strict=True):
        v = t.get("metric_value")
        if v is not None and t["status"] in ("succeeded", "stopped"):
            ax.scatter([x], [v], color=STATUS_COLORS.get(t["status"], "k"), zorder=3, s=28)
            if best is None or _better(v, best, direction):
                best = v
        running.append(best)
    failed = [x for x, t in zip(xs, hist, strict=True) if t["status"] == "failed"]
    ax.step(xs, [b if b is not None else math.nan for b in running], where="post",
            color="tab:green", label="running best")
    vals = [t.get("metric_value") for t in hist if t.get("metric_value") is not None]
    base = (r.get("baseline") or {}).get("metric_value")
    final = (r.get("final_evaluation") or {}).get("metric_value")
    if base is not None:
        ax.axhline(base, color="tab:gray", ls="--", label=f"baseline {base:.4g}")
    if final is not None:
        ax.axhline(final, color="tab:purple", ls=":", label=f"final evaluation {final:.4g}")
    if _log_scale(vals + [v for v in (base, final) if v is not None]):
        ax.set_yscale("log")
    for x in failed:
        ax.axvline(x, color="tab:red", alpha=0.25, lw=6)
    handles = [plt.Line2D([], [], marker="o", ls="", color=STATUS_COLORS[s], label=s)
               for s in ("succeeded", "stopped") if any(t["status"] == s for t in hist)]
    if failed:
        handles.append(plt.Line2D([], [], color="tab:red", alpha=0.25, lw=6, label="failed (no metric)"))
    ax.legend(handles=ax.get_legend_handles_labels()[0] + handles, fontsize=8, loc="best")
    ax.set_xlabel("trial (start order)")
    ax.set_ylabel(f"{metric} ({direction})")
    ax.set_title(f"Optimization history - {r['algorithm']} ({r['session_id']})", fontsize=10)
    ax.set_xticks(xs)
    ax.grid(alpha=0.3)
    return _save(ws, fig, "optimization_history.png")


def _axis_values(rows: list[dict[str, Any]], name: str, spec: Mapping[str, Any] | None):
    """Normalised [0, 1] positions of one hyperparameter plus tick labels."""
    vals = [t["hyperparameters"].get(name) for t in rows]
    options = (spec or {}).get("options")
    numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in vals if v is not None)
    if options is None and numeric:
        lo = (spec or {}).get("minimum")
        hi = (spec or {}).get("maximum")
        present = [float(v) for v in vals if v is not None]
        lo = float(lo) if isinstance(lo, (int, float)) else min(present, default=0.0)
        hi = float(hi) if isinstance(hi, (int, float)) else max(present, default=1.0)
        log = bool((spec or {}).get("log")) and lo > 0
        f = (lambda x: math.log10(x)) if log else (lambda x: x)
        span = (f(hi) - f(lo)) or 1.0
        pos = [None if v is None else min(1.0, max(0.0, (f(float(v)) - f(lo)) / span)) for v in vals]
        return pos, (f"{lo:.3g}", f"{hi:.3g}")
    cats = [str(o) for o in options] if options is not None else sorted({str(v) for v in vals if v is not None})
    n = max(1, len(cats) - 1)
    pos = [None if v is None or str(v) not in cats else cats.index(str(v)) / n for v in vals]
    return pos, (cats[0] if cats else "", cats[-1] if cats else "")


def plot_parallel(ws: Workspace, r: Mapping[str, Any]) -> str:
    plt = _plt()
    import matplotlib
    from matplotlib import cm, colors

    rows = [t for t in r["history"] if t.get("hyperparameters")]
    specs = {p["name"]: p for p in r.get("search_space") or []}
    names = sorted({k for t in rows for k in t["hyperparameters"]})
    fig, ax = plt.subplots(figsize=(max(6, 1.6 * len(names) + 2), 4.5))
    vals = [t.get("metric_value") for t in rows if t.get("metric_value") is not None]
    norm = (colors.LogNorm if _log_scale(vals) else colors.Normalize)(
        vmin=min(vals, default=0), vmax=max(vals, default=1))
    cmap = matplotlib.colormaps["viridis_r" if r["direction"] == "minimize" else "viridis"]
    axes = [_axis_values(rows, n, specs.get(n)) for n in names]
    for i, t in enumerate(rows):
        ys = [a[0][i] for a in axes]
        xs = [j for j, y in enumerate(ys) if y is not None]
        ys = [y for y in ys if y is not None]
        v = t.get("metric_value")
        if v is None:
            ax.plot(xs, ys, color="tab:red", ls="--", alpha=0.5, lw=1)
        else:
            ax.plot(xs, ys, color=cmap(norm(v)), alpha=0.85, lw=1.6)
    for j, (_, (lo, hi)) in enumerate(axes):
        ax.axvline(j, color="k", lw=0.8)
        ax.text(j, -0.06, lo, ha="center", va="top", fontsize=7)
        ax.text(j, 1.04, hi, ha="center", va="bottom", fontsize=7)
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels(names, rotation=20, ha="right", fontsize=8)
    ax.set_yticks([])
    ax.set_ylim(-0.15, 1.15)
    sm = cm.ScalarMappable(norm=norm, cmap=cmap)
    fig.colorbar(sm, ax=ax, label=r["metric"])
    ax.set_title("Hyperparameters coloured by metric (red dashed: failed)", fontsize=10)
    return _save(ws, fig, "parallel_coordinates.png")


def plot_learning_curves(ws: Workspace, r: Mapping[str, Any]) -> str:
    plt = _plt()
    metric = r["metric"]
    fig, ax = plt.subplots(figsize=(8, 4.5))
    allv: list[float] = []
    for t in _order(list(r["history"])):
        pts = [(e.get("epoch"), e.get(metric)) for e in t.get("metrics_per_epoch") or []
               if isinstance(e.get(metric), (int, float)) and e.get("epoch") is not None]
        if not pts:
            continue
        xs, ys = zip(*pts, strict=True)
        allv += ys
        color = STATUS_COLORS.get(t["status"], "k")
        ax.plot(xs, ys, marker=".", color=color, alpha=0.7, lw=1.2)
        ax.annotate(t["rec_id"][:8], (xs[-1], ys[-1]), fontsize=6, alpha=0.7)
        if t["status"] in ("stopped", "failed"):
            ax.scatter([xs[-1]], [ys[-1]], marker="x", color=color, s=40, zorder=3)
    if _log_scale(allv):
        ax.set_yscale("log")
    handles = [plt.Line2D([], [], color=c, label=s) for s, c in STATUS_COLORS.items()
               if any(t["status"] == s for t in r["history"])]
    ax.legend(handles=handles, fontsize=8, title="x = stopped early / failed", title_fontsize=7)
    ax.set_xlabel("epoch")
    ax.set_ylabel(metric)
    ax.set_title("Learning curves per trial", fontsize=10)
    ax.grid(alpha=0.3)
    return _save(ws, fig, "learning_curves.png")


def importance(r: Mapping[str, Any]) -> dict[str, float]:
    """|Spearman| of each hyperparameter with the metric over trials with a metric.
    Categorical values are ranked by their option order (a rough proxy)."""
    rows = [t for t in r["history"] if t.get("metric_value") is not None]
    specs = {p["name"]: p for p in r.get("search_space") or []}
    out: dict[str, float] = {}
    for name in sorted({k for t in rows for k in t.get("hyperparameters", {})}):
        pos, _ = _axis_values(rows, name, specs.get(name))
        pairs = [(p, t["metric_value"]) for p, t in zip(pos, rows, strict=True) if p is not None]
        if len(pairs) < 3:
            continue
        rho = spearman([p for p, _ in pairs], [m for _, m in pairs])
        if rho is not None:
            out[name] = abs(rho)
    return out


def plot_importance(ws: Workspace, r: Mapping[str, Any]) -> str | None:
    imp = importance(r)
    if not imp:
        return None
    plt = _plt()
    names = sorted(imp, key=imp.get)
    fig, ax = plt.subplots(figsize=(7, 0.45 * len(names) + 1.5))
    ax.barh(names, [imp[n] for n in names], color="tab:blue")
    ax.set_xlim(0, 1)
    ax.set_xlabel(f"|Spearman rank correlation| with {r['metric']}")
    ax.set_title(f"Parameter importance (rank-correlation proxy, n={sum(1 for t in r['history'] if t.get('metric_value') is not None)})",
                 fontsize=10)
    return _save(ws, fig, "param_importance.png")


def render_plots(ws: Workspace | str, result: Mapping[str, Any] | None = None) -> list[str]:
    """Write every plot for the experiment in ``ws``; returns the written paths.

    ``result`` defaults to the workspace's ``result.json``.  One failing plot
    is logged and skipped; the others are still written.
    """
    ws = ws if isinstance(ws, Workspace) else Workspace(ws)
    r = result if result is not None else ws.read_json("result.json")
    if not r.get("history"):
        return []
    out = []
    for name in ("plot_history", "plot_parallel", "plot_learning_curves", "plot_importance"):
        fn = globals()[name]
        try:
            path = fn(ws, r)
        except ImportError as exc:
            log.warning("plots skipped: matplotlib is not installed (pip install 'tao-automl[plots]'): %s", exc)
            return out
        except Exception as exc:  # noqa: BLE001 - plots never break a run
            log.warning("plot %s failed: %s: %s", name, type(exc).__name__, exc)
            continue
        if path:
            out.append(path)
    return out
