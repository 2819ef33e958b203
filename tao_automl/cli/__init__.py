"""``tao-automl``: run, review, watch, report and cancel AutoML experiments.

``run`` measures the baseline, shows the launch review and asks before
launching (``--yes`` skips the question; without a terminal it is required).

Exit codes: 0 success, 2 bad input or a refused run (any ``AutoMLError``;
one clear line on stderr; also: review blockers, the question answered no,
no terminal and no ``--yes`` -- nothing launched), 3 ``audit`` found the LLM workflow invalid, 130 interrupted (Ctrl-C, SIGTERM or ``tao-automl
cancel``; ``run`` still prints the partial report), 1 unexpected error.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any

from tao_automl.algorithms.llm.brain import audit
from tao_automl.cli.plan import load_plan, run_kwargs, runner_for
from tao_automl.errors import AutoMLError, SettingsError, WorkspaceError
from tao_automl.execution.cancel import cancel_experiment
from tao_automl.execution.extras import wait_for_plots
from tao_automl.execution.run import workspace_status
from tao_automl.reporting.plots import render_plots
from tao_automl.reporting.progress import (
    render_rich,
    render_text,
    resolve_experiment,
    snapshot,
    watch,
)
from tao_automl.reporting.report_html import write_html_report
from tao_automl.reporting.results import format_result
from tao_automl.reporting.review_render import _duration, render_review, use_color
from tao_automl.reporting.tracking import finish_tracking
from tao_automl.store.workspace import dumps_strict, json_ready

__all__ = ["main", "build_parser"]

PLAN_HELP = """\
PLAN.yaml holds the arguments of AutoMLRunner.run():
  skill_dir (required), platform, workspace_dir, action, automl_algorithm,
  automl_settings, spec_overrides, automl_hyperparameters, custom_param_ranges,
  train_dataset_uri, eval_dataset_uri, dataset_uris, base_checkpoint, resume,
  platform_kwargs, versions_file.
Relative paths are resolved against the plan file's folder. Unknown keys and
wrong types are refused (exit 2) with the file, key, value and what was expected.

Example:
  skill_dir: toy_skill
  workspace_dir: ../automl_workspace
  automl_algorithm: bayesian
  automl_settings: {max_recommendations: 6, max_concurrent: 2, seed: 0}
  spec_overrides: {train.num_epochs: 3}
"""

WS_HELP = ("an experiment folder (<workspace_dir>/<session_id>, holding settings.json) or a "
           "workspace_dir (its newest experiment is used)")


def _dump(obj: Any, as_json: bool) -> str:
    if as_json:
        return dumps_strict(obj, indent=2, sort_keys=True)
    import yaml

    return yaml.safe_dump(json_ready(obj), sort_keys=False,
                          default_flow_style=False, width=100)


def _cmd_run(args: argparse.Namespace) -> int:
    plan = load_plan(args.plan)
    kwargs = run_kwargs(plan)
    settings = dict(kwargs.get("automl_settings") or {})
    if args.quiet:
        settings["quiet"] = True
    elif "quiet" not in settings:
        settings["quiet"] = False  # the CLI shows the live table unless told otherwise
    kwargs["automl_settings"] = settings
    if args.resume:
        kwargs["resume"] = True
    if args.workspace_dir:
        plan["workspace_dir"] = args.workspace_dir
    if not args.yes and not _stdin_is_tty():
        # the review gate: nobody can answer the question, so launch nothing
        raise SettingsError("no terminal to confirm the launch (stdin is not a TTY)", file=args.plan,
                            key="--yes",
                            expected="an answer at the terminal, or --yes to launch without asking",
                            hint="read the review first: tao-automl review " + args.plan)
    runner = runner_for(plan)
    if not args.resume:
        out = sys.stderr if args.json else sys.stdout
        review = _review_before_run(runner, kwargs, out)
        if review.get("blockers"):
            print("not launched: the review has blockers (above)", file=sys.stderr)
            return 2
        if not args.yes and not _confirm(review):
            print("not launched (answered no)", file=sys.stderr)
            return 2
    elif not args.yes and not _ask(f"Resume the experiment in {plan.get('workspace_dir') or 'automl_workspace'}"
                                   " and launch its remaining trials? [y/N] "):
        print("not launched (answered no)", file=sys.stderr)
        return 2
    result = runner.run(**kwargs)
    print(dumps_strict(result, indent=2) if args.json else format_result(result))
    if result.get("plots_dir"):  # rendered in the background: the command ends when they are written
        wait_for_plots(result["workspace"])
    if str(result.get("stopped_early") or "").startswith("interrupted"):
        return 130  # Ctrl-C / SIGTERM / tao-automl cancel: the partial result was still written
    return 0


def _stdin_is_tty() -> bool:
    try:
        return sys.stdin is not None and sys.stdin.isatty()
    except (ValueError, OSError):
        return False


def _review_before_run(runner: Any, kwargs: dict[str, Any], out: Any) -> dict[str, Any]:
    """The review with the baseline measured (its job runs before the question)."""
    review_kwargs = {k: v for k, v in kwargs.items() if k != "resume"}
    settings = review_kwargs.get("automl_settings") or {}
    if settings.get("baseline", True):
        print("measuring the baseline before the review (one job) ...", file=sys.stderr, flush=True)
    review = runner.review(run_baseline=True, **review_kwargs)
    print(render_review(review, color=use_color(out)), file=out, flush=True)
    return review


def _confirm(review: dict[str, Any]) -> bool:
    est = (review.get("estimate") or {}).get("total_s")
    n = (review.get("budget") or {}).get("max_recommendations") or (review.get("budget") or {}).get(
        "population_size")
    return _ask(f"Launch {n or 'the'} trial(s) on {review['launch']['platform']} "
                f"(estimated {_duration(est)})? [y/N] ")


def _ask(question: str) -> bool:
    try:
        answer = input(question)
    except EOFError:
        return False
    return answer.strip().lower() in ("y", "yes")


def _cmd_review(args: argparse.Namespace) -> int:
    plan = load_plan(args.plan)
    kwargs = run_kwargs(plan)
    kwargs.pop("resume", None)
    review = runner_for(plan).review(**kwargs)
    fmt = "json" if args.json else args.format
    if fmt == "text":
        print(render_review(review), end="")
    else:
        print(_dump(review, fmt == "json"))
    return 0


def _cmd_status(args: argparse.Namespace) -> int:
    ws = resolve_experiment(args.workspace)
    if args.json:
        print(dumps_strict(workspace_status(ws), indent=2))
        return 0
    if not args.watch:
        snap = snapshot(ws)
        if sys.stdout.isatty():
            import shutil

            print(render_rich(snap, width=shutil.get_terminal_size((120, 24)).columns, color=use_color()))
        else:
            print(render_text(snap), flush=True)
        return 0
    try:
        why = watch(ws, interval_s=args.watch, timeout_s=args.timeout)
    except KeyboardInterrupt:
        print("\nstopped watching (the experiment goes on)", file=sys.stderr)
        return 0
    if why == "timeout":
        print(f"stopped watching after {args.timeout:.0f} s (--timeout); the experiment is still running",
              file=sys.stderr)
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    ws = resolve_experiment(args.workspace)
    if not ws.exists("result.json"):
        raise WorkspaceError("the experiment has no result yet", file=ws.path("result.json"),
                             expected="a finished experiment",
                             hint=f"use 'tao-automl status {args.workspace}' while it runs")
    result = ws.read_json("result.json")
    paths = [] if args.no_plots else render_plots(ws, result)
    if args.html:
        paths.append(write_html_report(ws, result))
    if args.wandb:
        finish_tracking(result)
    print(format_result(result))
    if paths:
        print("\nplots:\n" + "\n".join(f"  {p}" for p in paths))
    return 0


def _cmd_cancel(args: argparse.Namespace) -> int:
    """Drop cancel.json in the experiment folder (a live driver stops the
    search within seconds, skipping the final evaluation) and cancel every job
    the ledger shows as open, through the backend named in settings.json."""
    ws = resolve_experiment(args.workspace)
    if ws.exists("result.json") and not args.force:
        print(f"{ws.root}: the experiment has already finished; nothing to cancel")
        return 0
    done = cancel_experiment(ws)
    print(f"{ws.root}: cancel requested (a running driver stops within a few seconds)")
    for e in done:
        print(f"  trial {e['trial_id']}  job {e['job_id']}: {e['action']}")
    if not done:
        print("  no open jobs in the ledger")
    return 0


AUDIT_FAILED = 3


def _cmd_audit(args: argparse.Namespace) -> int:
    """Summarise <experiment>/brain/ (LLM calls, proposals, decisions) and exit
    3 when the LLM workflow failed: a trial without a successful call behind
    it, a random fallback, a prompt that left out finished trials, or no brain
    log at all."""
    ws = resolve_experiment(args.workspace)
    found = audit(ws)
    if args.json:
        print(_dump(found.to_dict(), True))
    else:
        d = found.to_dict()
        print(f"{ws.root}: LLM workflow {'VALID' if found.ok else 'FAILED'}")
        print(f"  calls: {d['calls']} ({d['calls_ok']} ok, {d['calls_failed']} failed; formats "
              f"{', '.join(d['formats']) or '-'}; {d['tokens']} tokens)")
        print(f"  proposals: {d['proposals']} ({d['proposals_valid']} valid, {d['repairs']} repair calls)")
        print("  decisions: " + (", ".join(f"{k} {v}" for k, v in sorted(d["decisions"].items())) or "none"))
        for problem in found.problems:
            print(f"  problem: {problem}")
    return 0 if found.ok else AUDIT_FAILED


def build_parser() -> argparse.ArgumentParser:
    """The argparse parser (sub-commands run, review, status, report, cancel, audit)."""
    p = argparse.ArgumentParser(
        prog="tao-automl",
        description="Hyperparameter optimization (AutoML) for NVIDIA TAO model skills on Ray Tune.",
        epilog="Exit codes: 0 ok, 2 bad input / refused run, 3 audit failed, 130 interrupted, "
               "1 unexpected error.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("-v", "--verbose", action="store_true", help="log at INFO level (tao_automl logger)")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    raw = argparse.RawDescriptionHelpFormatter

    r = sub.add_parser("run", help="run an AutoML search from a YAML plan",
                       description="Validate PLAN.yaml, measure the baseline, show the launch review "
                                   "and ask before launching (--yes skips the question; without a "
                                   "terminal --yes is required, else exit 2 and nothing is launched). "
                                   "Then run the search (trials, final evaluation; the baseline is "
                                   "reused) and print the text report. A live progress table is "
                                   "shown on stderr unless --quiet (or automl_settings.quiet: true).",
                       epilog=PLAN_HELP, formatter_class=raw)
    r.add_argument("plan", metavar="PLAN.yaml", help="the plan file")
    r.add_argument("--quiet", action="store_true", help="no live progress table")
    r.add_argument("--resume", action="store_true",
                   help="continue the experiment named by automl_settings.session_id (or the newest)")
    r.add_argument("--workspace-dir", help="override the plan's workspace_dir")
    r.add_argument("-y", "--yes", action="store_true",
                   help="launch without asking (needed when stdin is not a terminal: CI, scripts)")
    r.add_argument("--json", action="store_true", help="print the result dict as JSON instead of the report")
    r.set_defaults(func=_cmd_run)

    v = sub.add_parser("review", help="validate a plan and print what would run (launches nothing)",
                       description="Print the review of PLAN.yaml: search space, excluded parameters, "
                                   "the first recommendations, algorithm, metric, budget, launch "
                                   "details, time estimate and blockers. Nothing is launched.",
                       epilog=PLAN_HELP, formatter_class=raw)
    v.add_argument("plan", metavar="PLAN.yaml", help="the plan file")
    v.add_argument("--format", choices=("text", "yaml", "json"), default="text",
                   help="text: tables to read (default); yaml/json: the whole review dict")
    v.add_argument("--json", action="store_true", help="same as --format json")
    v.set_defaults(func=_cmd_review)

    s = _workspace_command(sub, "status", _cmd_status,
                           help="show the progress table of a running or finished experiment",
                           description="Per trial: platform job id, status, current and best metric, "
                                       "hyperparameters, elapsed; overall progress and ETA. Reads the "
                                       "workspace files only, so it works from any process.")
    s.add_argument("--watch", type=float, metavar="SECONDS", nargs="?", const=2.0, default=0,
                   help="follow the run until it finishes, refreshing every SECONDS (default 2): "
                        "redrawn in place on a terminal, printed on each change otherwise; Ctrl-C "
                        "stops watching (exit 0)")
    s.add_argument("--timeout", type=float, metavar="SECONDS", default=86400.0,
                   help="stop watching after SECONDS even if the run goes on (default one day)")
    s.add_argument("--json", action="store_true", help="print the status dict as JSON")

    t = _workspace_command(sub, "report", _cmd_report, help="re-render the plots and print the text report",
                           description="Re-render <experiment>/plots/*.png from result.json and print "
                                       "format_result(result).")
    t.add_argument("--no-plots", action="store_true", help="only print the report")
    t.add_argument("--html", action="store_true",
                   help="also write <experiment>/report.html: one self-contained page (summary, trials, "
                        "interactive plots, the launch review; plotly.js inline, works offline)")
    t.add_argument("--wandb", action="store_true",
                   help="also (re)write the WandB summary run when the settings enable WandB")

    c = _workspace_command(sub, "cancel", _cmd_cancel, help="cancel a running experiment and its open jobs")
    c.add_argument("--force", action="store_true", help="cancel open jobs even if result.json exists")
    a = _workspace_command(sub, "audit", _cmd_audit, help="check the brain log of an LLM-guided experiment")
    a.add_argument("--json", action="store_true", help="print the audit as JSON")
    return p


def _workspace_command(sub: Any, name: str, func: Any, *, help: str,
                       description: str | None = None) -> argparse.ArgumentParser:
    """A sub-command that reads one experiment: its WORKSPACE argument and
    handler (``description``: the handler's docstring unless given)."""
    cmd = sub.add_parser(name, help=help, description=description or " ".join((func.__doc__ or "").split()))
    cmd.add_argument("workspace", metavar="WORKSPACE", help=WS_HELP)
    cmd.set_defaults(func=func)
    return cmd


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``tao-automl`` / ``python -m tao_automl``; returns the exit code."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args) or 0)
    except AutoMLError as exc:
        print(f"tao-automl {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"tao-automl {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
