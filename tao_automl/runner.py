"""``AutoMLRunner``: the facade that wires skill, search space, spec builder,
algorithm registry, platform backend and Ray Tune into one run.

>>> from tao_automl.runner import AutoMLRunner
>>> runner = AutoMLRunner(skill_dir="examples/toy_skill", workspace_dir="ws")  # doctest: +SKIP
>>> review = runner.review(automl_settings={"max_recommendations": 8})      # doctest: +SKIP
>>> result = runner.run(automl_algorithm="bayesian",
...                     automl_settings={"max_recommendations": 8, "seed": 0})  # doctest: +SKIP
>>> result["best"]["metric_value"], result["best"]["checkpoint"]             # doctest: +SKIP

The run: preflight -> review (written to the workspace) -> baseline
evaluation -> search (Ray Tune; one platform job per trial) -> final
evaluation of the best checkpoint -> ``result.json`` and the returned dict.
Nothing is launched before every input has been validated.

The facade is the one module that imports the layers below it (planning,
execution, reporting, skill, search) inside its methods: ``from
tao_automl.runner import AutoMLRunner`` stays a few milliseconds and loads
neither Ray nor WandB (``docs/architecture.md``).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from tao_automl.config.secrets import check_storage_options
from tao_automl.config.statuses import EvalStatus
from tao_automl.errors import SettingsError, WorkspaceError
from tao_automl.store.local_mirror import job_root
from tao_automl.store.workspace import Workspace, check_session_id, is_uri, new_session_id

if TYPE_CHECKING:  # the planning layer is loaded on first use (module docstring)
    from tao_automl.planning.plan import RunPlan

__all__ = ["AutoMLRunner"]

log = logging.getLogger("tao_automl")


class AutoMLRunner:
    """Run AutoML for one action of one model skill on one platform.

    Args:
        skill_dir: a model skill directory (``references/skill_info.yaml``,
            ``references/spec_template_<action>.yaml``, ``schemas/<action>.schema.json``).
        platform_sdk: a backend name (``"local"``, ``"slurm"``, ``"docker"``,
            ``"kubernetes"``, ``"brev"``) or a :class:`~tao_automl.platforms.base.PlatformBackend`
            object; ``None`` = the embedded local backend. ``sdk=`` is an alias.
        workspace_dir: where experiments live (local path or fsspec URI);
            default ``./automl_workspace``.
        action: the action to tune (default ``train``).
        versions_file: a ``versions.yaml`` for bare image keys.
        poll_interval: nvidia-tao-automl's status poll period (seconds): the
            default of ``automl_settings["poll_interval_s"]`` (the longest single
            wait on a job; exits are noticed at once regardless).

    nvidia-tao-automl's order ``AutoMLRunner(sdk, skill_dir, action)`` works too:
    a first positional that is a platform object is taken as the platform (and
    a third positional then is the action).
    """

    def __init__(
        self,
        skill_dir: str | os.PathLike[str],
        platform_sdk: Any = None,
        workspace_dir: str | os.PathLike[str] | None = None,
        action: str = "train",
        *,
        sdk: Any = None,
        versions_file: str | os.PathLike[str] | None = None,
        storage_options: Mapping[str, Any] | None = None,
        poll_interval: float | None = None,
    ) -> None:
        from tao_automl.skill import load_skill

        if not isinstance(skill_dir, str | os.PathLike) and isinstance(platform_sdk, str | os.PathLike) \
                and skill_dir is not None and sdk is None:
            # nvidia-tao-automl's (sdk, skill_dir, action): its third positional is the action
            skill_dir, platform_sdk = platform_sdk, skill_dir
            if workspace_dir is not None and action == "train":
                action, workspace_dir = str(workspace_dir), None
        if poll_interval is not None and (isinstance(poll_interval, bool)
                                          or not isinstance(poll_interval, int | float) or poll_interval <= 0):
            raise SettingsError("invalid AutoMLRunner argument", key="poll_interval", value=poll_interval,
                                expected="a positive number of seconds")
        self.poll_interval = poll_interval
        if platform_sdk is not None and sdk is not None and platform_sdk is not sdk:
            raise SettingsError("pass platform_sdk or sdk, not both", key="sdk", value=sdk)
        self.skill_dir = str(Path(skill_dir).expanduser().resolve())
        self.skill = load_skill(self.skill_dir, versions_file=versions_file)
        self.platform_sdk = platform_sdk if platform_sdk is not None else sdk
        # how the user named the platform, for error messages (the CLI plan says "platform")
        self._platform_arg = "sdk" if platform_sdk is None and sdk is not None else "platform_sdk"
        self.workspace_dir = str(workspace_dir) if workspace_dir is not None else "automl_workspace"
        self.action = action
        self.storage_options = dict(storage_options or {})
        check_storage_options(self.storage_options)  # credentials only as secret("ENV") references

    # ------------------------------------------------------------------ API
    def review(self, *, run_baseline: bool = False, **kwargs: Any) -> dict[str, Any]:
        """Same arguments as :meth:`run`; validates and plans, launches nothing.

        Returns the review dict: ``search_space``, ``excluded``,
        ``recommendations`` (the exact initial batch), ``algorithm``,
        ``metric``, ``direction``, ``budget``, ``max_concurrent``, ``launch``,
        ``estimate``, ``baseline_plan``, ``blockers``...

        ``run_baseline=True`` also measures the baseline now (the only job it
        launches, and only when there is no blocker; see :meth:`baseline`), so
        ``review["baseline"]`` holds its job id, metric and record path; a
        following :meth:`run` with the same inputs reuses that record.
        """
        from tao_automl.planning.review import build_review

        baseline_fn = kwargs.pop("baseline_fn", None)
        metric_extractor = kwargs.pop("metric_extractor", None)
        args = self._normalize(kwargs)
        prepared = self._prepare(args, has_baseline_fn=baseline_fn is not None)
        ws_root = self._session_root(prepared.settings.session_id or "<new session>")
        if not run_baseline:
            return build_review(prepared, workspace=ws_root)
        measured = self._measure_baseline(prepared, baseline_fn, metric_extractor)
        per_trial = None
        if (measured.get("source") == "defaults" and measured.get("status") == EvalStatus.MEASURED
                and prepared.settings.estimate_trial_s is None):
            # the defaults run is one full trial: its duration replaces the guessed one
            per_trial = (measured.get("metadata") or {}).get("elapsed_s")
        review = build_review(prepared, workspace=ws_root, per_trial_s=per_trial)
        if per_trial:
            review["estimate"]["assumptions"][0] = (
                f"{per_trial:.0f} s per full trial, measured by the defaults baseline run")
        review["baseline"] = measured
        return review

    def baseline(self, **kwargs: Any) -> dict[str, Any]:
        """Measure the baseline before the search (same arguments as :meth:`run`).

        Runs what ``automl_settings["baseline"]`` asks for (the evaluate action
        on the starting checkpoint, or ``"defaults"``: one training run with the
        schema's default values) and keeps the record under
        ``<workspace_dir>/baselines/<key>/``, ``key`` being a hash of the inputs
        that determine the baseline.  A later :meth:`run` with the same inputs
        reuses it instead of launching a second baseline job.  Returns the
        evaluation dict (``status``, ``metric_value``, ``job_id``,
        ``record_path``, ``source``, ``reason``...).  Bad input raises before
        anything is launched; a blocked plan raises ``PreflightError``.
        """
        from tao_automl.planning.preparation import raise_blockers

        baseline_fn = kwargs.pop("baseline_fn", None)
        metric_extractor = kwargs.pop("metric_extractor", None)
        args = self._normalize(kwargs)
        prepared = self._prepare(args, has_baseline_fn=baseline_fn is not None)
        raise_blockers(prepared)
        return self._measure_baseline(prepared, baseline_fn, metric_extractor)

    def _measure_baseline(self, prepared: RunPlan, baseline_fn: Any, metric_extractor: Any) -> dict[str, Any]:
        import attrs

        from tao_automl.execution import baseline as bl
        from tao_automl.reporting.results import Evaluation

        s = prepared.settings
        if not s.baseline:
            return attrs.asdict(Evaluation(status=EvalStatus.SKIPPED, reason="disabled by automl_settings['baseline']=False"))
        if prepared.blockers:
            return attrs.asdict(Evaluation(status=EvalStatus.NOT_RUN, reason="not run: the review has blockers"))
        key = bl.baseline_key(prepared, self.skill_dir)
        base = Workspace(self.workspace_dir, self.storage_options)
        record = base.path(f"{bl.BASELINES_DIR}/{key}/evaluations/baseline.json")
        found = None if baseline_fn is not None else bl.cached(base, key)
        if found is not None:
            return {**attrs.asdict(found), "key": key, "record": record, "reused": True}
        ws = base.child(f"{bl.BASELINES_DIR}/{key}")
        ws.makedirs()
        job_root = ws.path("jobs") if not ws.uri else self.job_root(ws)
        ev = bl.measure(prepared=prepared, ws=ws, job_root=job_root, callback=baseline_fn,
                        metric_extractor=metric_extractor, key=key)
        ws.write_json("evaluations/baseline.json", {"kind": "baseline", "key": key, **attrs.asdict(ev)})
        return {**attrs.asdict(ev), "key": key, "record": record, "reused": False}

    def run(
        self,
        automl_algorithm: str | None = None,
        automl_settings: Mapping[str, Any] | None = None,
        spec_overrides: Mapping[str, Any] | None = None,
        automl_hyperparameters: list[str] | None = None,
        custom_param_ranges: Mapping[str, Any] | None = None,
        train_dataset_uri: str | list[str] | None = None,
        eval_dataset_uri: str | None = None,
        base_checkpoint: str | None = None,
        metric_extractor: Callable[[str, str], Any] | None = None,
        eval_fn: Callable[[dict, str], Any] | None = None,
        baseline_fn: Callable[[], Any] | None = None,
        final_eval_fn: Callable[[dict, str], Any] | None = None,
        on_recommendation: Callable[[Any], Any] | None = None,
        on_result: Callable[[Any, float | None, str], Any] | None = None,
        resume: bool = False,
        *,
        workspace_path: str | None = None,
        dataset_uris: Mapping[str, Any] | None = None,
        searcher: Any = None,
        scheduler: Any = None,
        workspace_id: str | None = None,
        execution: Mapping[str, Any] | None = None,
        feedback_fn: Callable[[Any, str | None], Any] | None = None,
        **platform_kwargs: Any,
    ) -> dict[str, Any]:
        """Run the search; returns the stable result dict (see ``tao_automl.reporting.results``).

        ``platform_kwargs`` reach the backend (e.g. ``partition=`` for SLURM);
        ``gpu_count``/``num_nodes``/``image``/``env``/``secret_env`` work on every
        platform. ``searcher``/``scheduler`` replace the algorithm's Ray Tune
        searcher/scheduler. ``resume=True`` continues the experiment named by
        ``automl_settings['session_id']``, or the most recent one.

        Callbacks get a :class:`~tao_automl.execution.recommendation.Recommendation` (a
        read-only mapping of the trial's dotted values with ``id``, ``job_id``,
        ``status``, ``result``...): ``on_recommendation(rec)``,
        ``on_result(rec, metric_value, status)``, ``eval_fn(rec, job_id)``,
        ``final_eval_fn(best_rec, train_job_id)``, ``feedback_fn(rec, job_id)``
        (its JSON value is kept as the trial's ``feedback``);
        ``baseline_fn(specs)`` gets the nested baseline spec.
        nvidia-tao-automl's ``workspace_id`` is recorded in the result as given and
        ``execution`` (a ``python_script`` mapping) replaces the action's
        execution for this run.
        """
        from tao_automl.execution.run import execute

        if workspace_path is not None:
            self.workspace_dir = str(workspace_path)
        saved: dict[str, Any] | None = None
        if resume:
            # The experiment's saved arguments are the truth; what the caller
            # passes again (or newly, e.g. session_id) is layered on top.
            saved = self._saved_run(automl_settings)
            automl_settings = {**saved["settings"], **dict(automl_settings or {})}
            automl_algorithm = automl_algorithm or saved["settings"].get("algorithm")
            if spec_overrides is None:
                spec_overrides = saved.get("overrides") or {}
            if train_dataset_uri is None and eval_dataset_uri is None and dataset_uris is None:
                dataset_uris = saved.get("dataset_uris") or None
        args = self._normalize(dict(
            automl_algorithm=automl_algorithm, automl_settings=automl_settings,
            spec_overrides=spec_overrides, automl_hyperparameters=automl_hyperparameters,
            custom_param_ranges=custom_param_ranges, train_dataset_uri=train_dataset_uri,
            eval_dataset_uri=eval_dataset_uri, base_checkpoint=base_checkpoint,
            workspace_path=workspace_path, dataset_uris=dataset_uris, execution=execution,
            **platform_kwargs,
        ))
        if workspace_id is not None and not isinstance(workspace_id, str):
            raise SettingsError("invalid run() argument", key="workspace_id", value=workspace_id,
                                expected="a string")
        prepared = self._prepare(args, has_baseline_fn=baseline_fn is not None,
                                 has_final_eval_fn=final_eval_fn is not None)
        from tao_automl.planning.preparation import raise_blockers

        raise_blockers(prepared)
        ws, resumed = self._open_workspace(prepared, resume)
        from tao_automl.store.lease import DriverLease

        # One live driver per experiment (tao_automl.store.lease): taken before anything is
        # written, released however the run ends.
        lease = DriverLease(ws, purpose="resume" if resumed else "new").acquire()
        from tao_automl.store import local_mirror

        try:
            if not resumed and ws.exists("settings.json"):  # created by a driver that won the race
                raise WorkspaceError("experiment already exists", file=ws.root, key="session_id",
                                     value=prepared.settings.session_id,
                                     expected="a new session_id, or resume=True to continue it")
            if resumed:
                from tao_automl.search import SearchSpace

                saved_space = SearchSpace.from_dict(ws.read_json("search_space.json"))
                if automl_hyperparameters is not None or custom_param_ranges is not None:
                    _same_space_on_resume(saved_space, prepared.space, ws.root)
                prepared = attrs.evolve(prepared, space=saved_space)
                local_mirror.restore(ws)  # a URI workspace's job outputs, back at their local paths
            try:
                return execute(
                    runner=self, prepared=prepared, ws=ws, resumed=resumed,
                    hooks=dict(metric_extractor=metric_extractor, eval_fn=eval_fn, baseline_fn=baseline_fn,
                               final_eval_fn=final_eval_fn, on_recommendation=on_recommendation,
                               on_result=on_result, searcher=searcher, scheduler=scheduler,
                               feedback_fn=feedback_fn, workspace_id=workspace_id,
                               execution=args["execution"]),
                )
            finally:
                local_mirror.publish(ws)  # URI workspace: its local job folder goes into it, then away
        finally:
            lease.release()

    # ------------------------------------------------------------- helpers
    _RUN_KEYS = (
        "automl_algorithm", "automl_settings", "spec_overrides", "automl_hyperparameters",
        "custom_param_ranges", "train_dataset_uri", "eval_dataset_uri", "base_checkpoint",
        "workspace_path", "dataset_uris", "execution",
    )
    _HOOKS = ("metric_extractor", "eval_fn", "baseline_fn", "final_eval_fn", "on_recommendation",
              "on_result", "resume", "searcher", "scheduler", "feedback_fn", "workspace_id")

    def _normalize(self, kwargs: Mapping[str, Any]) -> dict[str, Any]:
        args = {k: kwargs.get(k) for k in self._RUN_KEYS}
        platform = {k: v for k, v in kwargs.items() if k not in self._RUN_KEYS and k not in self._HOOKS}
        args["platform_kwargs"] = platform
        return _compat_args(args, self.poll_interval)

    def _prepare(self, args: Mapping[str, Any], **flags: Any) -> RunPlan:
        from tao_automl.config.settings import name_as_written, written_keys
        from tao_automl.planning.preparation import prepare
        from tao_automl.skill.compat import apply_execution

        try:
            return prepare(
                skill=apply_execution(self.skill, self.action, args.get("execution")),
                action=self.action, platform_sdk=self.platform_sdk,
                automl_algorithm=args["automl_algorithm"], automl_settings=args["automl_settings"],
                spec_overrides=args["spec_overrides"], automl_hyperparameters=args["automl_hyperparameters"],
                custom_param_ranges=args["custom_param_ranges"], train_dataset_uri=args["train_dataset_uri"],
                eval_dataset_uri=args["eval_dataset_uri"], dataset_uris=args["dataset_uris"],
                base_checkpoint=args["base_checkpoint"], platform_kwargs=args["platform_kwargs"], **flags,
            )
        except SettingsError as exc:
            # checks after parsing (algorithm budgets, fidelity...) name canonical
            # settings, and the platform check says "platform": say them as the user wrote them
            if exc.key == "platform":
                raise name_as_written(exc, {"platform": self._platform_arg}) from exc.__cause__
            raise name_as_written(exc, written_keys(args["automl_settings"],
                                                    algorithm=args["automl_algorithm"])) from exc.__cause__

    def _session_root(self, session_id: str) -> str:
        base = self.workspace_dir
        if is_uri(base):
            return f"{base.rstrip('/')}/{session_id}"
        return str(Path(base).expanduser().resolve() / session_id)

    def _saved_run(self, automl_settings: Mapping[str, Any] | None) -> dict[str, Any]:
        """settings.json of the experiment a resume continues (WorkspaceError if none)."""
        from tao_automl.config.settings import SETTINGS_ALIASES

        raw = dict(automl_settings or {})
        key, sid = next(((k, v) for k, v in raw.items() if SETTINGS_ALIASES.get(k, k) == "session_id"),
                        (None, None))
        if sid is not None:  # before it names a folder to read
            check_session_id(sid, key=f"automl_settings.{key}")
        ws = self._resume_target(Workspace(self.workspace_dir, self.storage_options), sid)
        saved = ws.read_json("settings.json")
        saved.setdefault("settings", {})
        saved["settings"] = {**saved["settings"], "session_id": ws.root.rstrip("/").rsplit("/", 1)[-1]}
        return saved

    @staticmethod
    def _resume_target(base: Workspace, sid: str | None) -> Workspace:
        if sid is None:
            sessions = [n for n in base.listdir() if base.exists(f"{n}/settings.json")]
            if not sessions:
                raise WorkspaceError("nothing to resume", file=base.root, key="resume", value=True,
                                     expected="an earlier experiment in workspace_dir (none was found)")
            sid = max(sessions, key=lambda n: base.read_json(f"{n}/settings.json").get("created", 0))
        ws = base.child(check_session_id(sid))
        if not ws.exists("settings.json"):
            raise WorkspaceError("nothing to resume", file=ws.root, key="session_id", value=sid,
                                 expected="an experiment folder with settings.json")
        return ws

    def _open_workspace(self, prepared: RunPlan, resume: bool) -> tuple[Workspace, bool]:
        base = Workspace(self.workspace_dir, self.storage_options)
        sid = prepared.settings.session_id
        if resume:
            return self._resume_target(base, sid), True
        sid = sid or new_session_id()
        ws = base.child(check_session_id(sid))
        if ws.exists("settings.json"):
            raise WorkspaceError("experiment already exists", file=ws.root, key="session_id", value=sid,
                                 expected="a new session_id, or resume=True to continue it")
        return ws, False

    def job_root(self, ws: Workspace) -> str:
        """Where jobs write (:func:`tao_automl.store.local_mirror.job_root`)."""
        return job_root(ws)

    @staticmethod
    def status(workspace: str | os.PathLike[str], storage_options: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Read a running or finished experiment folder (from any process)."""
        from tao_automl.execution.run import workspace_status

        return workspace_status(Workspace(workspace, dict(storage_options or {})))

    @staticmethod
    def render_status(workspace: str | os.PathLike[str], storage_options: Mapping[str, Any] | None = None) -> str:
        """The live progress table of an experiment folder, as text (any process).

        A ``workspace_dir`` holding several experiments shows the newest one.
        """
        from tao_automl.reporting.progress import render_status

        return render_status(workspace, dict(storage_options or {}))


def _compat_args(args: dict[str, Any], poll_interval: float | None) -> dict[str, Any]:
    """nvidia-tao-automl spellings that are run() arguments here:
    ``automl_settings["automl_range_override"]`` joins ``custom_param_ranges``
    (a parameter in both is an error); the constructor's ``poll_interval`` is
    the default of ``poll_interval_s``."""
    from tao_automl.config.compat import range_overrides
    from tao_automl.config.settings import SETTINGS_ALIASES

    raw = args.get("automl_settings")
    if raw is None and poll_interval is not None:
        raw = {}
    if not isinstance(raw, Mapping):
        return args
    settings = dict(raw)
    if "automl_range_override" in settings:
        extra = range_overrides(settings.pop("automl_range_override"))
        given = dict(args.get("custom_param_ranges") or {})
        both = sorted(set(extra) & set(given))
        if both:
            raise SettingsError("a parameter range given twice",
                                key=f"automl_settings.automl_range_override[{both[0]}]",
                                value=extra[both[0]], expected=f"only one of automl_range_override and "
                                                               f"custom_param_ranges['{both[0]}'] ({given[both[0]]!r})")
        args["custom_param_ranges"] = {**given, **extra}
    if poll_interval is not None and not any(SETTINGS_ALIASES.get(k, k) == "poll_interval_s" for k in settings):
        settings["poll_interval_s"] = poll_interval
    args["automl_settings"] = settings
    return args


def _now() -> float:
    return time.time()


def _same_space_on_resume(saved: Any, given: Any, root: str) -> None:
    """A resume continues the saved search space (search_space.json): hyperparameters
    or ranges passed again must describe that same space, never a silently ignored other one."""
    def rows(space: Any) -> dict[str, tuple[Any, ...]]:
        return {p.name: (p.kind, p.low, p.high, p.log, tuple(p.options) if p.options is not None else None)
                for p in space.params}

    old, new = rows(saved), rows(given)
    if old == new:
        return
    diff = sorted(set(old) ^ set(new)) or sorted(n for n in old if old[n] != new.get(n))
    key = "automl_hyperparameters" if set(old) != set(new) else "custom_param_ranges"
    raise SettingsError("a resumed experiment continues its saved search space",
                        file=f"{root.rstrip('/')}/search_space.json", key=key, value=diff,
                        expected="the hyperparameters and ranges of the original run (or leave them out on resume); "
                                 "start a new session_id to search another space")
