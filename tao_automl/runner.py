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
"""

from __future__ import annotations

import logging
import os
import signal
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from tao_automl.errors import SettingsError, WorkspaceError, describe
from tao_automl.secrets import check_storage_options
from tao_automl.workspace import Workspace, is_uri, new_session_id

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
    ) -> None:
        from tao_automl.skill import load_skill

        if platform_sdk is not None and sdk is not None and platform_sdk is not sdk:
            raise SettingsError(describe("pass platform_sdk or sdk, not both", key="sdk", value=sdk))
        self.skill_dir = str(Path(skill_dir).expanduser().resolve())
        self.skill = load_skill(self.skill_dir, versions_file=versions_file)
        self.platform_sdk = platform_sdk if platform_sdk is not None else sdk
        self.workspace_dir = str(workspace_dir) if workspace_dir is not None else "automl_workspace"
        self.action = action
        self.storage_options = dict(storage_options or {})
        check_storage_options(self.storage_options)  # credentials only as secret("ENV") references

    # ------------------------------------------------------------------ API
    def review(self, **kwargs: Any) -> dict[str, Any]:
        """Same arguments as :meth:`run`; validates and plans, launches nothing.

        Returns the review dict: ``search_space``, ``excluded``,
        ``recommendations`` (the exact initial batch), ``algorithm``,
        ``metric``, ``direction``, ``budget``, ``max_concurrent``, ``launch``,
        ``estimate``, ``blockers``...
        """
        from tao_automl.review import build_review

        args = self._normalize(kwargs)
        prepared = self._prepare(args)
        ws_root = self._session_root(prepared.settings.session_id or "<new session>")
        return build_review(prepared, workspace=ws_root)

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
        on_recommendation: Callable[[dict], Any] | None = None,
        on_result: Callable[[dict], Any] | None = None,
        resume: bool = False,
        *,
        workspace_path: str | None = None,
        dataset_uris: Mapping[str, Any] | None = None,
        searcher: Any = None,
        scheduler: Any = None,
        **platform_kwargs: Any,
    ) -> dict[str, Any]:
        """Run the search; returns the stable result dict (see ``tao_automl.results``).

        ``platform_kwargs`` reach the backend (e.g. ``partition=`` for SLURM);
        ``gpu_count``/``num_nodes``/``image``/``env``/``secret_env`` work on every
        platform. ``searcher``/``scheduler`` replace the algorithm's Ray Tune
        searcher/scheduler. ``resume=True`` continues the experiment named by
        ``automl_settings['session_id']``, or the most recent one.
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
            workspace_path=workspace_path, dataset_uris=dataset_uris, **platform_kwargs,
        ))
        prepared = self._prepare(args, has_baseline_fn=baseline_fn is not None,
                                 has_final_eval_fn=final_eval_fn is not None)
        from tao_automl.preparation import raise_blockers

        raise_blockers(prepared)
        ws, resumed = self._open_workspace(prepared, resume)
        from tao_automl.lease import DriverLease

        # One live driver per experiment (tao_automl.lease): taken before anything is
        # written, released however the run ends.
        lease = DriverLease(ws, purpose="resume" if resumed else "new").acquire()
        try:
            if not resumed and ws.exists("settings.json"):  # created by a driver that won the race
                raise WorkspaceError(
                    describe("experiment already exists", file=ws.root, key="session_id",
                             value=prepared.settings.session_id,
                             expected="a new session_id, or resume=True to continue it")
                )
            if resumed:
                from tao_automl.search import SearchSpace

                prepared.space = SearchSpace.from_dict(ws.read_json("search_space.json"))
            return execute(
                runner=self, prepared=prepared, ws=ws, resumed=resumed,
                hooks=dict(metric_extractor=metric_extractor, eval_fn=eval_fn, baseline_fn=baseline_fn,
                           final_eval_fn=final_eval_fn, on_recommendation=on_recommendation,
                           on_result=on_result, searcher=searcher, scheduler=scheduler),
            )
        finally:
            lease.release()

    # ------------------------------------------------------------- helpers
    _RUN_KEYS = (
        "automl_algorithm", "automl_settings", "spec_overrides", "automl_hyperparameters",
        "custom_param_ranges", "train_dataset_uri", "eval_dataset_uri", "base_checkpoint",
        "workspace_path", "dataset_uris",
    )
    _HOOKS = ("metric_extractor", "eval_fn", "baseline_fn", "final_eval_fn", "on_recommendation",
              "on_result", "resume", "searcher", "scheduler")

    def _normalize(self, kwargs: Mapping[str, Any]) -> dict[str, Any]:
        args = {k: kwargs.get(k) for k in self._RUN_KEYS}
        platform = {k: v for k, v in kwargs.items() if k not in self._RUN_KEYS and k not in self._HOOKS}
        args["platform_kwargs"] = platform
        return args

    def _prepare(self, args: Mapping[str, Any], **flags: Any) -> Any:
        from tao_automl.preparation import prepare

        return prepare(
            skill=self.skill, action=self.action, platform_sdk=self.platform_sdk,
            automl_algorithm=args["automl_algorithm"], automl_settings=args["automl_settings"],
            spec_overrides=args["spec_overrides"], automl_hyperparameters=args["automl_hyperparameters"],
            custom_param_ranges=args["custom_param_ranges"], train_dataset_uri=args["train_dataset_uri"],
            eval_dataset_uri=args["eval_dataset_uri"], dataset_uris=args["dataset_uris"],
            base_checkpoint=args["base_checkpoint"], platform_kwargs=args["platform_kwargs"], **flags,
        )

    def _session_root(self, session_id: str) -> str:
        base = self.workspace_dir
        if is_uri(base):
            return f"{base.rstrip('/')}/{session_id}"
        return str(Path(base).expanduser().resolve() / session_id)

    def _saved_run(self, automl_settings: Mapping[str, Any] | None) -> dict[str, Any]:
        """settings.json of the experiment a resume continues (WorkspaceError if none)."""
        from tao_automl.settings import SETTINGS_ALIASES

        raw = dict(automl_settings or {})
        sid = next((v for k, v in raw.items() if SETTINGS_ALIASES.get(k, k) == "session_id"), None)
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
                raise WorkspaceError(
                    describe("nothing to resume", file=base.root, key="resume", value=True,
                             expected="an earlier experiment in workspace_dir (none was found)")
                )
            sid = max(sessions, key=lambda n: base.read_json(f"{n}/settings.json").get("created", 0))
        ws = base.child(sid)
        if not ws.exists("settings.json"):
            raise WorkspaceError(
                describe("nothing to resume", file=ws.root, key="session_id", value=sid,
                         expected="an experiment folder with settings.json")
            )
        return ws

    def _open_workspace(self, prepared: Any, resume: bool) -> tuple[Workspace, bool]:
        base = Workspace(self.workspace_dir, self.storage_options)
        sid = prepared.settings.session_id
        if resume:
            return self._resume_target(base, sid), True
        sid = sid or new_session_id()
        ws = base.child(sid)
        if ws.exists("settings.json"):
            raise WorkspaceError(
                describe("experiment already exists", file=ws.root, key="session_id", value=sid,
                         expected="a new session_id, or resume=True to continue it")
            )
        return ws, False

    def job_root(self, ws: Workspace) -> str:
        """Where jobs write (the workspace itself, or a local mirror for URI workspaces)."""
        if not ws.uri:
            return ws.path("trials")
        sid = ws.root.rstrip("/").rsplit("/", 1)[-1]
        # The URI's hash keeps two workspaces with the same session id apart (stable across resumes).
        import hashlib

        tag = hashlib.sha256(ws.root.encode()).hexdigest()[:10]
        return str(Path(tempfile.gettempdir()) / "tao-automl-jobs" / f"{sid}-{tag}" / "trials")

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
        from tao_automl.progress import render_status

        return render_status(workspace, dict(storage_options or {}))


def install_signal_handlers(stop: Any) -> Callable[[], None]:
    """SIGINT/SIGTERM -> a graceful stop; returns a function restoring the old handlers."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    old = {}

    def handler(signum: int, frame: Any) -> None:
        stop.interrupt(f"interrupted by {signal.Signals(signum).name}")

    for sig in (signal.SIGINT, signal.SIGTERM):
        old[sig] = signal.getsignal(sig)
        signal.signal(sig, handler)

    def restore() -> None:
        for sig, h in old.items():
            signal.signal(sig, h)

    return restore


def _now() -> float:
    return time.time()
