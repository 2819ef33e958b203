"""Plots of a finished (or running) experiment, drawn by Optuna's visualisation.

The result dict's history becomes an in-memory Optuna study
(:func:`to_study`: one ``FrozenTrial`` per trial, distributions from the
search space, per-epoch values as intermediate values), and Optuna draws it:

``optimization_history.png``  metric per trial and the running best, with the
                              baseline (and final evaluation) as lines
``parallel_coordinates.png``  hyperparameters coloured by the metric
``slice.png``                 metric against each hyperparameter
``contour.png``               metric over the two most important hyperparameters
``param_importance.png``      fANOVA importance (Optuna's default evaluator)
``learning_curves.png``       metric per epoch for every trial

PNGs come from ``optuna.visualization.matplotlib`` (the ``plots`` extra:
matplotlib, plus scikit-learn for fANOVA); :func:`plotly_figures` gives the
same figures from ``optuna.visualization`` (plotly) for the HTML report
(:mod:`tao_automl.reporting.report_html`).  The metric axis is logarithmic when the
values span more than two decades; epoch axes have integer ticks.
"""

from __future__ import annotations

import io
import logging
import math
import warnings
import weakref
from collections.abc import Mapping
from typing import Any

from tao_automl.config.statuses import TrialStatus
from tao_automl.store.workspace import Workspace

__all__ = ["render_plots", "to_study", "plotly_figures", "log_scale", "PLOTS"]

log = logging.getLogger("tao_automl")

# file name (without .png) -> title; the order of the report
PLOTS = {
    "optimization_history": "Optimization history",
    "parallel_coordinates": "Parallel coordinates",
    "slice": "Slice",
    "contour": "Contour (two most important parameters)",
    "param_importance": "Parameter importance (fANOVA)",
    "learning_curves": "Learning curves",
    "pareto_front": "Pareto front (multi-objective runs; the chosen trial marked)",
}


def mo_study(result: Mapping[str, Any]) -> tuple[Any, list[str]] | None:
    """A multi-objective Optuna study of the succeeded trials' objective values
    (None unless the run had 2 or 3 objectives)."""
    objs = (result.get("multi_objective") or {}).get("objectives") or []
    if result.get("pareto_front") is None or len(objs) not in (2, 3):
        return None
    import optuna
    from optuna.trial import TrialState, create_trial

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    names = [o["metric"] for o in objs]
    study = optuna.create_study(directions=[o["direction"] for o in objs],
                                study_name=str(result.get("session_id") or "automl"))
    for t in result.get("history") or []:
        ov = t.get("objective_values") or {}
        if t.get("status") == TrialStatus.SUCCEEDED and all(isinstance(ov.get(n), (int, float)) for n in names):
            study.add_trial(create_trial(state=TrialState.COMPLETE, values=[float(ov[n]) for n in names],
                                         user_attrs={"rec_id": t["rec_id"]}))
    return (study, names) if study.trials else None


def _chosen(result: Mapping[str, Any], names: list[str]) -> list[float] | None:
    ov = (result.get("best") or {}).get("objective_values") or {}
    return [float(ov[n]) for n in names] if all(n in ov for n in names) else None


def _pareto_mpl(result: Mapping[str, Any]) -> Any:
    import optuna.visualization.matplotlib as ovm

    got = mo_study(result)
    if got is None:
        return None
    study, names = got
    ax = ovm.plot_pareto_front(study, target_names=names)
    chosen = _chosen(result, names)
    if chosen is not None and len(names) == 2:
        best = result["best"]
        ax.scatter([chosen[0]], [chosen[1]], marker="*", s=260, c="gold", edgecolors="black", zorder=5,
                   label=f"chosen: {best['rec_id']} ({best.get('selected_by') or 'score'})")
        ax.legend(fontsize=8, loc="best")
    return _figure(ax)


def _pareto_plotly(result: Mapping[str, Any]) -> Any:
    import optuna.visualization as ov

    got = mo_study(result)
    if got is None:
        return None
    study, names = got
    fig = ov.plot_pareto_front(study, target_names=names)
    chosen = _chosen(result, names)
    if chosen is not None and len(names) == 2:
        best = result["best"]
        fig.add_scatter(x=[chosen[0]], y=[chosen[1]], mode="markers",
                        marker={"symbol": "star", "size": 18, "color": "gold", "line": {"width": 1}},
                        name=f"chosen: {best['rec_id']} ({best.get('selected_by') or 'score'})")
    return fig


def log_scale(values: list[float | None]) -> bool:
    """True when the positive values span more than two decades."""
    pos = [float(v) for v in values if isinstance(v, (int, float)) and v is not None]
    return bool(pos) and min(pos) > 0 and max(pos) / min(pos) > 1e2


def _choice(v: Any) -> Any:
    return v if v is None or isinstance(v, (bool, int, float, str)) else str(v)


def _distributions(result: Mapping[str, Any], rows: list[dict[str, Any]]) -> dict[str, Any]:
    """One Optuna distribution per hyperparameter, wide enough for every value seen."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    specs = {p["name"]: p for p in result.get("search_space") or []}
    names = sorted({k for t in rows for k in t.get("hyperparameters") or {}})
    out: dict[str, Any] = {}
    for name in names:
        spec = specs.get(name) or {}
        seen = [t["hyperparameters"][name] for t in rows if name in (t.get("hyperparameters") or {})]
        numeric = [v for v in seen if isinstance(v, (int, float)) and not isinstance(v, bool)]
        if spec.get("options") is None and seen and len(numeric) == len(seen):
            lo = min([*numeric, *([spec["minimum"]] if isinstance(spec.get("minimum"), (int, float)) else [])])
            hi = max([*numeric, *([spec["maximum"]] if isinstance(spec.get("maximum"), (int, float)) else [])])
            is_log = bool(spec.get("log")) and lo > 0
            if spec.get("type") == "int" and all(float(v).is_integer() for v in numeric):
                out[name] = IntDistribution(int(math.floor(lo)), int(math.ceil(hi)), log=is_log)
            else:
                out[name] = FloatDistribution(float(lo), float(hi) if hi > lo else float(lo) + 1e-12, log=is_log)
            continue
        choices: list[Any] = [_choice(o) for o in spec.get("options") or []]
        for v in seen:
            if _choice(v) not in choices:
                choices.append(_choice(v))
        out[name] = CategoricalDistribution(choices)
    return out


def to_study(result: Mapping[str, Any]) -> Any:
    """An in-memory Optuna study holding the experiment's trials.

    Succeeded trials are COMPLETE, trials stopped early with a metric PRUNED,
    the others FAIL; per-epoch values are intermediate values (step = epoch);
    ``user_attrs`` carry ``rec_id`` and ``job_id``.
    """
    import optuna
    from optuna.trial import TrialState, create_trial

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    metric, direction = result["metric"], result["direction"]
    rows = [t for t in _order(list(result.get("history") or [])) if t.get("hyperparameters") is not None]
    dists = _distributions(result, rows)
    study = optuna.create_study(direction=direction, study_name=str(result.get("session_id") or "automl"))
    trials = []
    for t in rows:
        params = {k: (_choice(v) if isinstance(dists[k], optuna.distributions.CategoricalDistribution)
                      else (int(v) if isinstance(dists[k], optuna.distributions.IntDistribution) else float(v)))
                  for k, v in (t.get("hyperparameters") or {}).items() if k in dists}
        steps: dict[int, float] = {}
        for e in t.get("metrics_per_epoch") or []:
            v = e.get(metric)
            if isinstance(v, (int, float)) and not isinstance(v, bool) and e.get("epoch") is not None \
                    and math.isfinite(v):
                steps[int(e["epoch"])] = float(v)
        value = t.get("metric_value")
        if t.get("status") == TrialStatus.SUCCEEDED and value is not None:
            state = TrialState.COMPLETE
        elif t.get("status") == TrialStatus.STOPPED and (value is not None or steps):
            state, value = TrialState.PRUNED, None
        else:
            state, value = TrialState.FAIL, None
        trials.append(create_trial(
            params=params, distributions={k: dists[k] for k in params}, value=value, state=state,
            intermediate_values=steps,
            user_attrs={"rec_id": t.get("rec_id"), "job_id": t.get("job_id"), "status": t.get("status")},
        ))
    study.add_trials(trials)
    return study


def _order(history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(history, key=lambda t: (t.get("started_at") or math.inf, str(t.get("rec_id"))))


def _completed(study: Any) -> list[Any]:
    from optuna.trial import TrialState

    return study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))


def _references(result: Mapping[str, Any]) -> list[tuple[str, float, str]]:
    out = []
    for key, label, color in (("baseline", "baseline", "gray"), ("final_evaluation", "final evaluation", "purple")):
        ev = result.get(key) or {}
        if isinstance(ev.get("metric_value"), (int, float)):
            src = " (defaults)" if key == "baseline" and ev.get("source") == "defaults" else ""
            out.append((f"{label}{src} {ev['metric_value']:.4g}", float(ev["metric_value"]), color))
    return out


def _metric_values(result: Mapping[str, Any], study: Any) -> list[float]:
    vals = [t.value for t in _completed(study) if t.value is not None]
    vals += [v for t in study.trials for v in t.intermediate_values.values()]
    return vals + [v for _, v, _ in _references(result)]


_IMPORTANCE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _evaluator() -> Any:
    """fANOVA (Optuna's default), seeded so the same history gives the same figure."""
    from optuna.importance import FanovaImportanceEvaluator

    return FanovaImportanceEvaluator(n_trees=32, seed=0)


def _top_params(study: Any, n: int) -> list[str]:
    import optuna

    names = sorted({k for t in _completed(study) for k in t.params})
    varied = [k for k in names if len({repr(t.params.get(k)) for t in _completed(study)}) > 1]
    if len(varied) <= n:
        return varied
    if study not in _IMPORTANCE:  # computed once per study (contour check + contour plot)
        try:
            _IMPORTANCE[study] = list(optuna.importance.get_param_importances(
                study, evaluator=_evaluator(), params=varied))
        except Exception:  # noqa: BLE001 - ranking is a nicety
            _IMPORTANCE[study] = varied
    return _IMPORTANCE[study][:n]


def _can(name: str, study: Any) -> bool:
    """Whether a plot has enough data (Optuna raises or draws nothing otherwise)."""
    done = _completed(study)
    if name in ("optimization_history",):
        return bool(study.trials)
    if name == "learning_curves":
        return any(t.intermediate_values for t in study.trials)
    if name in ("parallel_coordinates", "slice"):
        return bool(done) and any(t.params for t in done)
    if name == "contour":
        return len(done) >= 2 and len(_top_params(study, 2)) == 2
    if name == "param_importance":
        return len(done) >= 2 and bool(_top_params(study, 1))
    return False


# ---------------------------------------------------------------- matplotlib
def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _figure(ax: Any) -> Any:
    import numpy as np

    first = np.atleast_1d(ax).flat[0]
    return first.figure


def _mpl(name: str, study: Any, result: Mapping[str, Any]) -> Any:
    """One matplotlib figure drawn by optuna.visualization.matplotlib."""
    import optuna.visualization.matplotlib as ovm
    from matplotlib.ticker import MaxNLocator

    metric = result["metric"]
    logy = log_scale(_metric_values(result, study))
    if name == "optimization_history":
        ax = ovm.plot_optimization_history(study, target_name=metric)
        for label, value, color in _references(result):
            ax.axhline(value, color=f"tab:{color}", ls="--", label=label)
        if logy:
            ax.set_yscale("log")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.legend(fontsize=8, loc="best")
    elif name == "parallel_coordinates":
        ax = ovm.plot_parallel_coordinate(study, target_name=metric)
    elif name == "slice":
        ax = ovm.plot_slice(study, target_name=metric)
        if logy:
            import numpy as np

            for a in np.atleast_1d(ax).flat:
                a.set_yscale("log")
    elif name == "contour":
        ax = ovm.plot_contour(study, params=_top_params(study, 2), target_name=metric)
    elif name == "param_importance":
        ax = ovm.plot_param_importances(study, evaluator=_evaluator(), target_name=metric)
    elif name == "learning_curves":
        ax = ovm.plot_intermediate_values(study)
        ax.set_title("Learning curves (metric per epoch, per trial)")
        for line in ax.get_lines():
            line.set_label(_trial_label(study, line.get_label()))
        if ax.get_legend() is not None:
            ax.legend(fontsize=7, bbox_to_anchor=(1.02, 1), loc="upper left")
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if logy:
            ax.set_yscale("log")
        if ax.get_legend() is not None and len(study.trials) > 12:
            ax.get_legend().remove()
    else:
        raise ValueError(f"unknown plot {name!r}")
    fig = _figure(ax)
    fig.set_size_inches(max(fig.get_size_inches()[0], 8), max(fig.get_size_inches()[1], 4.5))
    return fig


def _save(ws: Workspace, fig: Any, name: str) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    _plt().close(fig)
    return ws.write_bytes(f"plots/{name}.png", buf.getvalue())


def render_plots(ws: Workspace | str, result: Mapping[str, Any] | None = None) -> list[str]:
    """Write every PNG plot for the experiment in ``ws``; returns the written paths.

    ``result`` defaults to the workspace's ``result.json``.  A plot without
    enough data is skipped; one failing plot is logged and skipped; the others
    are still written.
    """
    ws = ws if isinstance(ws, Workspace) else Workspace(ws)
    r = result if result is not None else ws.read_json("result.json")
    if not r.get("history"):
        return []
    try:
        _plt()
        import optuna.visualization.matplotlib  # noqa: F401
    except ImportError as exc:
        log.warning("plots skipped: matplotlib is not installed (pip install 'tao-automl[plots]'): %s", exc)
        return []
    study = to_study(r)
    out = []
    for name in PLOTS:
        try:
            if not _can(name, study):
                continue
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # Optuna's ExperimentalWarning for the matplotlib backend
                fig = _mpl(name, study, r)
            out.append(_save(ws, fig, name))
        except Exception as exc:  # noqa: BLE001 - plots never break a run
            log.warning("plot %s failed: %s: %s", name, type(exc).__name__, exc)
            _plt().close("all")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fig = _pareto_mpl(r)
        if fig is not None:
            out.append(_save(ws, fig, "pareto_front"))
    except Exception as exc:  # noqa: BLE001 - plots never break a run
        log.warning("plot pareto_front failed: %s: %s", type(exc).__name__, exc)
        _plt().close("all")
    return out


# -------------------------------------------------------------------- plotly
def plotly_figures(result: Mapping[str, Any]) -> dict[str, Any]:
    """``{name: plotly Figure}`` drawn by ``optuna.visualization`` (for HTML);
    plots without enough data are left out, a failing one is logged."""
    import optuna.visualization as ov

    if not result.get("history"):
        return {}
    study = to_study(result)
    metric = result["metric"]
    logy = log_scale(_metric_values(result, study))
    out: dict[str, Any] = {}
    for name in PLOTS:
        try:
            if not _can(name, study):
                continue
            if name == "optimization_history":
                fig = ov.plot_optimization_history(study, target_name=metric)
                for label, value, color in _references(result):
                    fig.add_hline(y=value, line_dash="dash", line_color=color, annotation_text=label)
                fig.update_xaxes(dtick=1 if len(study.trials) <= 20 else None)
            elif name == "parallel_coordinates":
                fig = ov.plot_parallel_coordinate(study, target_name=metric)
            elif name == "slice":
                fig = ov.plot_slice(study, target_name=metric)
            elif name == "contour":
                fig = ov.plot_contour(study, params=_top_params(study, 2), target_name=metric)
            elif name == "param_importance":
                fig = ov.plot_param_importances(study, evaluator=_evaluator(), target_name=metric)
            else:
                fig = ov.plot_intermediate_values(study)
                fig.update_layout(title="Learning curves (metric per epoch, per trial)")
                for trace in fig.data:
                    trace.name = _trial_label(study, trace.name)
                fig.update_xaxes(title_text="epoch", tickformat="d", dtick=1 if _max_epoch(study) <= 20 else None)
                fig.update_yaxes(title_text=metric)
            if logy and name in ("optimization_history", "learning_curves", "slice"):
                fig.update_yaxes(type="log")
            out[name] = fig
        except Exception as exc:  # noqa: BLE001 - one plot never breaks the report
            log.warning("plot %s failed: %s: %s", name, type(exc).__name__, exc)
    try:
        fig = _pareto_plotly(result)
        if fig is not None:
            out["pareto_front"] = fig
    except Exception as exc:  # noqa: BLE001 - one plot never breaks the report
        log.warning("plot pareto_front failed: %s: %s", type(exc).__name__, exc)
    return out


def _trial_label(study: Any, label: str | None) -> str:
    """Optuna's "Trial<n>" -> the trial's rec_id."""
    if label and label.startswith("Trial") and label[5:].isdigit():
        n = int(label[5:])
        if n < len(study.trials):
            return str(study.trials[n].user_attrs.get("rec_id") or label)
    return label or ""


def _max_epoch(study: Any) -> int:
    return max((s for t in study.trials for s in t.intermediate_values), default=0)
