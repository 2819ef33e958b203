"""The Ray Tune trial function: one trial owns one platform job at a time.

build spec -> submit -> watch -> report per-epoch metrics -> on a stop or
pause decision cancel the job.  Multi-fidelity hand-off goes through a
*pointer* checkpoint: a tiny Tune checkpoint holding ``pointer.json`` with the
path of the job's own checkpoint for that epoch; a resumed or exploited trial
launches a new job with ``resume_training_checkpoint_path`` set to it.  The
pointer folder is written under the trial's job folder and removed as soon as
``tune.report`` has copied it into Tune's storage (the workspace's ``ray/``),
or when the trial ends without reporting it: nothing is left in $TMPDIR.

Idempotence: every launch is written to the :class:`JobLedger` before the
trial waits on it.  When Tune restarts a trial after a driver crash, the trial
finds its open attempt in the ledger and reattaches to the running job
instead of launching a second one; a trial whose outcome is already in the
ledger is replayed from it, never re-run.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, NoReturn

import attrs

from tao_automl.config.backoff import delays
from tao_automl.config.secrets import mask_env
from tao_automl.errors import (
    AutoMLError,
    JobNotFoundError,
    MetricError,
    PlatformError,
    SubmitError,
    TransientSubmitError,
)
from tao_automl.execution import early
from tao_automl.execution.checkpoints import select_checkpoint
from tao_automl.execution.jobs import (
    JobOptions,
    artifact_reader,
    build_job_request,
    cancel_job,
    job_files,
    submit_job,
    watch_job,
)
from tao_automl.execution.metrics import MetricStream, coerce_metric, extract_metric
from tao_automl.execution.objective_values import epoch_values, extract_objectives
from tao_automl.execution.recommendation import Recommendation
from tao_automl.platforms import get_backend
from tao_automl.platforms.base import FailureReason, JobHandle, JobState, JobStatus
from tao_automl.search import SearchSpace
from tao_automl.skill import load_skill
from tao_automl.skill.compat import apply_execution
from tao_automl.spec import SpecBuilder, SpecParamContext, write_spec
from tao_automl.store.events import (
    AdoptedEvent,
    EpochEvent,
    FinishedEvent,
    NoteEvent,
    PlannedEvent,
    StoppedEvent,
    SubmittedEvent,
    SubmittingEvent,
)
from tao_automl.store.ledger import Attempt, JobLedger
from tao_automl.store.workspace import Workspace

__all__ = ["TrialPlan", "TrialFailed", "make_trainable", "run_trial", "launch_early", "launch_early_one"]

POINTER = "pointer.json"
FIDELITY_EPOCHS = "__epochs"  # config key: the epochs this job trains (set by dehb)
CHECKPOINT_WAIT_S = 5.0  # longest wait for an epoch's checkpoint after its metric
#: Largest epoch number taken as progress when the algorithm sets no max_epochs.
MAX_EPOCH = 100_000
MAX_NOTES = 20  # distinct notes kept per trial run

log = logging.getLogger(__name__)


class TrialFailed(AutoMLError):
    """Raised inside a trial so Tune records it as errored (never as a metric)."""


@attrs.frozen(kw_only=True)
class TrialPlan:
    """Everything a trial needs; pickled to Ray workers."""

    skill_dir: str
    action: str
    space: dict[str, Any]
    overrides: dict[str, Any]
    dataset_uris: dict[str, Any]
    base_checkpoint: str | None
    metric: str
    mode: str
    fidelity_key: str | None
    max_epochs: int | None
    needs_checkpoints: bool
    multi_fidelity: bool
    workspace_root: str
    storage_options: dict[str, Any]
    job_root: str
    backend: Any  # a PlatformBackend (picklable) or ("name", kwargs)
    job_options: JobOptions
    max_retries: int = 2
    poll_interval_s: float = 1.0
    train_sample_count: int | None = None
    shard_count: int = 1
    batch_key: str | None = None
    metric_extractor: Callable[..., Any] | None = None
    eval_fn: Callable[..., Any] | None = None
    session_id: str = ""
    checkpoint_epoch_offset: int | None = None  # None: inferred from the job's checkpoints
    execution: dict[str, Any] | None = None  # run(execution=...): replaces the action's execution
    #: multi-objective runs: the objectives (``metric`` is then their weighted score, SCORE)
    objectives: tuple[Any, ...] = ()
    #: the early-start records (tao_automl.execution.early): a fresh trial adopts
    #: the driver's job whose configuration equals its own; None: no early start
    early_dir: str | None = None
    #: how many early jobs make the first batch (the rest were queued while Tune started)
    early_batch: int | None = None

    @property
    def stream_metric(self) -> str:
        """The metric a job's log is parsed for (the first objective in a multi-objective run)."""
        return self.objectives[0].metric if self.objectives else self.metric


def _native(value: Any) -> Any:
    """numpy scalars (from Ray's samplers) -> plain Python, recursively, so
    specs serialize in YAML/JSON/TOML."""
    if isinstance(value, dict):
        return {k: _native(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_native(v) for v in value]
    if hasattr(value, "item") and callable(value.item):
        return value.item()
    return value


def _node_id() -> str | None:
    """The Ray node this trial runs on (None outside Ray)."""
    try:
        import ray

        return ray.get_runtime_context().get_node_id() if ray.is_initialized() else None
    except Exception:  # informative only
        return None


_SKILLS: dict[tuple[str, float], Any] = {}


def _skill(skill_dir: str) -> Any:
    """The skill bundle, parsed once per worker process (a reused actor runs
    many trials; parsing the YAML/JSON files cost ~20 ms per trial).  Keyed by
    the skill_info.yaml mtime, so an edited skill is read again."""
    try:
        mtime = os.stat(os.path.join(skill_dir, "references", "skill_info.yaml")).st_mtime
    except OSError:
        return load_skill(skill_dir)
    key = (skill_dir, mtime)
    if key not in _SKILLS:
        _SKILLS.clear()
        _SKILLS[key] = load_skill(skill_dir)
    return _SKILLS[key]


def _backend(plan: TrialPlan) -> Any:
    if isinstance(plan.backend, tuple):
        name, kwargs = plan.backend
        return get_backend(name, **kwargs)
    return plan.backend


def _read_pointer(checkpoint: Any) -> dict[str, Any] | None:
    if checkpoint is None:
        return None
    with checkpoint.as_directory() as d:
        p = Path(d) / POINTER
        if p.exists():
            return json.loads(p.read_text())
    return None


def _pointer_checkpoint(payload: dict[str, Any], parent: str) -> Any:
    """A Tune checkpoint in a new folder under ``parent`` (the caller removes
    it once reported: ``tune.report`` copies it into Tune's storage)."""
    from ray import tune

    Path(parent).mkdir(parents=True, exist_ok=True)
    d = tempfile.mkdtemp(prefix="pointer-", dir=parent)
    Path(d, POINTER).write_text(json.dumps(payload))
    return tune.Checkpoint.from_directory(d)


def _drop_checkpoint(checkpoint: Any) -> None:
    if checkpoint is not None:
        shutil.rmtree(checkpoint.path, ignore_errors=True)


class _TrialRun:
    """State of one trial execution inside a Tune worker."""

    def __init__(self, plan: TrialPlan, config: Mapping[str, Any], trial_id: str, report: Callable) -> None:
        self.plan = plan
        self.trial_id = trial_id
        self.report = report
        mask_env(plan.job_options.secret_env)  # this worker masks them in what it writes
        self.ws = Workspace(plan.workspace_root, plan.storage_options)
        self.ledger = JobLedger(self.ws)
        self.skill = _skill(plan.skill_dir)
        if plan.execution is not None:
            self.skill = apply_execution(self.skill, plan.action, plan.execution)
        self.space = SearchSpace.from_dict(plan.space)
        self.backend = _backend(plan)
        self.config = _native(dict(config))
        # Searcher annotations ("__epochs", "__bracket"...) are not hyperparameters;
        # "__epochs" is this job's fidelity (dehb: each job trains exactly its budget).
        hyper = {k: v for k, v in self.config.items() if not str(k).startswith("__")}
        epochs = self.config.get(FIDELITY_EPOCHS)
        self.fidelity_epochs: int | None = int(epochs) if epochs is not None else None
        self.values, self.adjustments = self.space.enforce(
            _native(self.space.decode(hyper)),
            train_sample_count=plan.train_sample_count,
            shard_count=plan.shard_count,
            batch_key=plan.batch_key,
        )
        self.last_reported_epoch = -1
        self.reported_any = False
        self.last_value: float | None = None
        # The report of the top-fidelity epoch waits for the job's exit: a
        # scheduler that stops or pauses at max_t must not cancel a job that is
        # about to finish (the trial would be recorded as stopped, or resumed
        # from its last checkpoint with nothing left to train).
        self.held: tuple[dict[str, Any], Any] | None = None
        self.checkpoint_wait_s = CHECKPOINT_WAIT_S
        self.notes: list[str] = []
        self.early_tries = 0  # the driver's early submit of this configuration failed: its first try

    # -- spec & launch -------------------------------------------------------
    def _build_spec(self, attempt: int, resume_from: str | None) -> tuple[str, str]:
        out_dir = f"{self.plan.job_root}/{self.trial_id}/{attempt}"
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        overrides = dict(self.plan.overrides)
        if self.plan.multi_fidelity and self.plan.fidelity_key and self.plan.max_epochs:
            # the algorithm owns the fidelity
            overrides[self.plan.fidelity_key] = self.fidelity_epochs or self.plan.max_epochs
        ctx = SpecParamContext(
            action=self.plan.action,
            job_id=f"{self.trial_id}-{attempt}",
            output_dir=out_dir,
            ptm=self.plan.base_checkpoint,
            resume_checkpoint=resume_from,
        )
        built = SpecBuilder(self.skill, self.plan.action).build(
            overrides=overrides,
            hyperparameters=self.values,
            dataset_uris=self.plan.dataset_uris,
            context=ctx,
        )
        fmt = self.skill.action(self.plan.action).config_format or "yaml"
        spec_path = str(Path(out_dir) / f"spec.{fmt}")
        write_spec(built.spec, spec_path, fmt)
        return spec_path, out_dir

    def _request(self, attempt: int, spec_path: str, out_dir: str) -> Any:
        return build_job_request(
            skill=self.skill,
            action=self.plan.action,
            name=f"{self.plan.session_id}-{self.trial_id}-{attempt}",
            spec_path=spec_path,
            results_dir=out_dir,
            backend=self.backend,
            options=self.plan.job_options,
            labels={"tao-automl-trial": self.trial_id, "tao-automl-session": self.plan.session_id},
        )

    def _submit(self, attempt: int, resume_from: str | None, start_epoch: int) -> Attempt:
        tried, self.early_tries = self.early_tries, 0
        spec_path, out_dir = self._build_spec(attempt, resume_from)
        request = self._request(attempt, spec_path, out_dir)
        # Intent first: a driver killed after the platform accepted the job but
        # before 'submitted' is written leaves this, and resume finds the job by name.
        intent = SubmittingEvent(trial_id=self.trial_id, attempt=attempt, name=request.name,
                                 results_dir=out_dir, spec_path=spec_path, resume_from=resume_from,
                                 start_epoch=start_epoch, purpose=self.plan.action)
        handle = submit_job(self.backend, request, retries=self.plan.max_retries - tried, ledger=self.ledger,
                            intent=intent, node=_node_id())
        return Attempt(number=attempt, handle=handle, spec_path=spec_path, resume_from=resume_from, start_epoch=start_epoch)

    def _adopt_early(self) -> Attempt | None:
        """The driver's early job of this configuration, recorded as attempt 1
        (None when there is none: the trial submits its own)."""
        rec = early.take(self.plan.early_dir, early.config_key(self.values, self.fidelity_epochs), self.trial_id)
        if rec is None:
            return None
        if rec.get("error"):  # the driver tried this submit: that was the first of 1 + max_retries tries
            err = rec["error"]
            exc = (TransientSubmitError if err.get("transient") else SubmitError)(err.get("message") or "submit failed")
            if not err.get("transient") or self.plan.max_retries < 1:
                self._submit_failed(1, exc)
            self.early_tries = 1
            return None
        handle = JobHandle.from_dict(rec["handle"])
        spec_path = rec.get("spec_path")
        # trials/<trial> -> early-<i>: the trial's files are where every trial's are
        # (trials/<trial>/<attempt>/), checkpoints and specs named by the trial.
        folder = os.path.dirname(str(rec.get("results_dir") or "").rstrip("/"))
        link = f"{self.plan.job_root}/{self.trial_id}"
        if folder and handle.results_dir and handle.results_dir.startswith(folder + "/"):
            try:
                os.symlink(os.path.basename(folder), link, target_is_directory=True)
            except OSError as exc:  # the early folder's own paths then
                log.warning("trial %s: no trial folder link to %s (%s)", self.trial_id, folder, exc)
            else:
                handle = attrs.evolve(handle, results_dir=link + handle.results_dir[len(folder):])
                if spec_path and spec_path.startswith(folder + "/"):
                    spec_path = link + spec_path[len(folder):]
        self.ledger.write(SubmittedEvent(trial_id=self.trial_id, attempt=1, handle=handle.to_dict(),
                                         spec_path=spec_path, resume_from=None, start_epoch=0,
                                         purpose=self.plan.action, node=_node_id(),
                                         launched_t=rec.get("t")))
        log.info("trial %s adopted early job %s", self.trial_id, handle.job_id)
        try:
            ended = self.backend.status(handle).terminal
        except PlatformError:
            ended = False
        if ended:  # this trial would end at once: first let the batch's other trials start (see wait_taken)
            early.wait_taken(self.plan.early_dir, self.plan.early_batch)
        return Attempt(number=1, handle=handle, spec_path=spec_path, resume_from=None, start_epoch=0)

    # -- reporting -----------------------------------------------------------
    def _checkpoint_for(self, handle: JobHandle, epoch: int, start_epoch: int = 0) -> str | None:
        """The job's checkpoint of ``epoch``.  Jobs print an epoch's metric
        before saving its checkpoint, so wait for it briefly (a pause decided
        on this report must resume from this epoch, not from scratch); a job
        that does not checkpoint every epoch makes later lookups not wait."""
        deadline = time.monotonic() + self.checkpoint_wait_s
        pauses = delays(0.02, cap=0.5)
        while True:
            try:
                arts = self.backend.list_artifacts(handle)
                rel = select_checkpoint(arts, which="epoch", epoch=epoch, start_epoch=start_epoch,
                                        epoch_offset=self.plan.checkpoint_epoch_offset)
                break
            except AutoMLError:
                if time.monotonic() >= deadline:
                    self.checkpoint_wait_s = 0.0
                    return None
                try:
                    if self.backend.status(handle).terminal and time.monotonic() + 0.5 < deadline:
                        deadline = time.monotonic() + 0.5  # last listing after the exit
                except PlatformError:
                    pass
                time.sleep(next(pauses))
        base = handle.results_dir or ""
        return rel if os.path.isabs(rel) or "://" in rel else f"{base}/{rel}"

    def _absurd_epoch(self, rec: Any) -> str | None:
        """Why the record's epoch cannot be progress (None when it can)."""
        bound = self.plan.max_epochs if self.plan.multi_fidelity and self.plan.max_epochs else MAX_EPOCH
        if rec.bad_epoch is not None:
            return f"epoch {rec.bad_epoch!r} is not an integer"
        if rec.epoch is not None and not 0 <= rec.epoch <= bound:
            return f"epoch {rec.epoch!r} is outside 0..{bound}"
        return None

    def _on_record(self, attempt: Attempt, rec: Any) -> None:
        why = self._absurd_epoch(rec)
        if why is not None:
            note = f"ignored a {rec.source or 'metric'} record from attempt {attempt.number}: {why}"
            log.warning("trial %s: %s", self.trial_id, note)
            if note not in self.notes and len(self.notes) < MAX_NOTES:
                self.notes.append(note)
                self.ledger.write(NoteEvent(trial_id=self.trial_id, attempt=attempt.number, note=note))
            return
        values = dict(rec.values)
        extra: dict[str, float] = {}
        if self.plan.objectives:
            extra = epoch_values(self.plan.objectives, values) or {}
            values.update(extra)
        value = values.get(self.plan.metric)
        epoch = rec.epoch if rec.epoch is not None else self.last_reported_epoch + 1
        self.ledger.write(EpochEvent(trial_id=self.trial_id, attempt=attempt.number, epoch=epoch, values=values))
        if value is None or epoch <= self.last_reported_epoch:
            return
        metrics = {**extra, self.plan.metric: float(value), "epoch": int(epoch), "attempt": attempt.number}
        checkpoint = None
        if self.plan.needs_checkpoints:
            path = self._checkpoint_for(attempt.handle, int(epoch), attempt.start_epoch)
            if path:
                checkpoint = _pointer_checkpoint(
                    {"checkpoint_path": path, "epoch": int(epoch), "trial_id": self.trial_id},
                    f"{self.plan.job_root}/{self.trial_id}",
                )
        self.last_reported_epoch = int(epoch)
        self.reported_any = True
        self.last_value = float(value)
        top = self.fidelity_epochs or self.plan.max_epochs
        if self.plan.multi_fidelity and top and epoch >= top:
            if self.held is not None:
                _drop_checkpoint(self.held[1])
            self.held = (metrics, checkpoint)
            return
        self._report(metrics, checkpoint)

    def _report(self, metrics: dict[str, Any], checkpoint: Any) -> None:
        """Report to Tune; its copy of a pointer checkpoint is the one that
        counts, so the local folder goes at once (also when Tune stops the
        trial inside ``report``)."""
        try:
            self.report(metrics, checkpoint=checkpoint)
        finally:
            _drop_checkpoint(checkpoint)

    # -- the loop ------------------------------------------------------------
    def run(self, pointer: dict[str, Any] | None) -> None:
        try:
            self._run(pointer)
        finally:
            if self.held is not None:  # never reported: the trial failed or was stopped
                _drop_checkpoint(self.held[1])
                self.held = None

    def _run(self, pointer: dict[str, Any] | None) -> None:
        prior = self.ledger.trial(self.trial_id)
        replanned = prior.planned is not None and prior.planned.get("config") != self.config
        if prior.planned is None or replanned:
            # A new 'planned' event when the config changes (PBT exploit/explore):
            # the ledger's newest plan is the trial's hyperparameters.
            self.ledger.write(PlannedEvent(
                trial_id=self.trial_id,
                config=self.config,
                hyperparameters=self.values,
                adjustments=list(self.adjustments),
                revision=0 if prior.planned is None else prior.planned.revision + 1,
                source_trial=(pointer or {}).get("trial_id"),
                fidelity_epochs=self.fidelity_epochs,
            ))
        resume_from = (pointer or {}).get("checkpoint_path")
        start_epoch = int((pointer or {}).get("epoch", 0) or 0)
        self.last_reported_epoch = start_epoch
        attempt: Attempt | None = prior.open_attempt
        if attempt is not None and attempt.resume_from != resume_from:
            self._cancel(attempt, "superseded by a new start point")
            attempt = None
        if attempt is not None and replanned:
            # The job runs the previous hyperparameters: never credit it to these.
            self._cancel(attempt, "superseded by a new configuration")
            attempt = None
        if attempt is not None:
            try:
                st = self.backend.status(attempt.handle)
            except JobNotFoundError:
                st = JobStatus(state=JobState.UNKNOWN)
            except PlatformError:
                # A status hiccup is not a lost job: relaunching would leave the
                # running one orphaned.  The watch below tolerates/settles errors.
                st = JobStatus(state=JobState.RUNNING)
            if st.state is JobState.UNKNOWN:
                attempt = None  # the platform lost it: relaunch
        number = len(prior.attempts)
        if attempt is None and not prior.attempts and resume_from is None and self.plan.early_dir:
            attempt = self._adopt_early()
            number = 1 if attempt is not None else 0
        retries = 0
        while True:
            if attempt is None:
                number += 1
                try:
                    attempt = self._submit(number, resume_from, start_epoch)
                except SubmitError as exc:
                    self._submit_failed(number, exc)
            stream = MetricStream(self.plan.stream_metric)
            try:
                watched = watch_job(
                    self.backend,
                    attempt.handle,
                    stream=stream,
                    on_record=lambda r, a=attempt: self._on_record(a, r),
                    poll_s=self.plan.poll_interval_s,
                )
            except PlatformError as exc:
                # The backend kept failing on status calls: the job's fate is
                # unknown.  Cancel it (no orphan) and classify as infrastructure.
                self._cancel(attempt, "status calls kept failing", record=False)
                status = JobStatus(state=JobState.FAILED, reason=FailureReason.INFRASTRUCTURE,
                                   message=f"lost track of job {attempt.handle.job_id} (canceled): the "
                                           f"{getattr(self.backend, 'name', 'platform')} backend kept "
                                           f"failing on status calls: {type(exc).__name__}: {exc}")
            except BaseException:
                # Tune stopped/paused the trial (SystemExit) or the worker dies.
                self._cancel(attempt, "stopped by the scheduler")
                raise
            else:
                status = watched.status
            if status.succeeded:
                self._finish_success(attempt, watched.logs, extract_metric)
                return
            reason = status.reason or FailureReason.PROGRAM
            retryable = reason.retryable and retries < self.plan.max_retries
            self.ledger.write(FinishedEvent(
                trial_id=self.trial_id,
                attempt=number,
                state=status.state.value,
                reason=reason.value,
                exit_code=status.exit_code,
                message=status.message[-2000:],
                metric_value=None,
                final=not retryable,
            ))
            if not retryable:
                raise TrialFailed(
                    f"trial {self.trial_id} failed: {reason.value} (exit code {status.exit_code}): "
                    f"{status.message[-500:]}"
                )
            retries += 1
            attempt = None

    def _submit_failed(self, number: int, exc: SubmitError) -> NoReturn:
        """Submission failed for good (transient errors were retried
        ``max_retries`` times): an infrastructure failure of the trial."""
        tries = self.plan.max_retries + 1 if isinstance(exc, TransientSubmitError) else 1
        message = f"job submission failed ({tries} tries): {type(exc).__name__}: {exc}"
        self.ledger.write(FinishedEvent(
            trial_id=self.trial_id,
            attempt=number,
            state=JobState.FAILED.value,
            reason=FailureReason.INFRASTRUCTURE.value,
            exit_code=None,
            message=message[-2000:],
            metric_value=None,
            final=True,
        ))
        raise TrialFailed(f"trial {self.trial_id} failed: infrastructure: {message[-500:]}") from exc

    def _finish_success(self, attempt: Attempt, logs: str, extract_metric: Callable) -> None:
        handle = attempt.handle
        read = artifact_reader(self.backend, handle)
        if self.plan.objectives:
            self._finish_objectives(attempt, logs)
            return
        try:
            result = extract_metric(
                self.plan.metric, logs=logs, artifacts=read, extractor=self.plan.metric_extractor,
                artifact_paths=job_files(self.backend, handle),
            )
            value = result.value
            # no value: say what was searched and what was unreadable (e.g. a
            # corrupt status.json) instead of a bare "None"
            source = result.source or "; ".join(result.notes[-4:]) or "no metric source"
            per_epoch = result.per_epoch
        except MetricError as exc:
            value, source, per_epoch = None, f"error: {exc}", []
        if self.plan.eval_fn is not None:
            evaluated = self._eval_fn(handle)  # None: keep the extracted metric (nvidia-tao-automl's rule)
            if evaluated is not None:
                value, source = evaluated, "eval_fn"
        if not self.reported_any:
            for rec in per_epoch:  # status.json-only jobs: report their epochs now
                self._on_record(attempt, rec)
        if value is None:
            self.ledger.write(FinishedEvent(
                trial_id=self.trial_id,
                attempt=attempt.number,
                state=JobState.FAILED.value,
                reason=FailureReason.PROGRAM.value,
                exit_code=0,
                message=f"job exited 0 but no value for metric '{self.plan.metric}' was found ({source})",
                metric_value=None,
                final=True,
            ))
            raise TrialFailed(f"trial {self.trial_id}: no value for metric '{self.plan.metric}' ({source})")
        # The ledger first: the report below may make Tune stop this actor.
        self.ledger.write(FinishedEvent(
            trial_id=self.trial_id,
            attempt=attempt.number,
            state=JobState.SUCCEEDED.value,
            reason=None,
            exit_code=0,
            message="",
            metric_value=float(value),
            metric_source=source,
            final=True,
        ))
        if self.held is not None:
            metrics, checkpoint = self.held
            self.held = None
            self._report({**metrics, self.plan.metric: float(value)}, checkpoint)
        elif not self.reported_any or self.last_value != value:
            epoch = max(self.last_reported_epoch, 0) + (0 if self.reported_any else 1)
            self.report({self.plan.metric: float(value), "epoch": int(epoch), "attempt": attempt.number}, checkpoint=None)

    def _finish_objectives(self, attempt: Attempt, logs: str) -> None:
        """A multi-objective job: every objective's final value; the score is their weighted sum."""
        handle = attempt.handle
        read = artifact_reader(self.backend, handle)
        got = extract_objectives(self.plan.objectives, logs=logs, artifacts=read,
                                 artifact_paths=job_files(self.backend, handle),
                                 extractor=self.plan.metric_extractor)
        if not self.reported_any:
            first = extract_metric(self.plan.stream_metric, logs=logs, artifacts=read,
                                   artifact_paths=job_files(self.backend, handle))
            for rec in first.per_epoch:  # status.json-only jobs: report their epochs now
                self._on_record(attempt, rec)
        if got.score is None:
            message = f"job exited 0 but {got.reason()}"
            self.ledger.write(FinishedEvent(trial_id=self.trial_id, attempt=attempt.number,
                                            state=JobState.FAILED.value, reason=FailureReason.PROGRAM.value,
                                            exit_code=0, message=message[-2000:], metric_value=None, final=True))
            raise TrialFailed(f"trial {self.trial_id}: {message[-500:]}")
        value = got.score
        self.ledger.write(FinishedEvent(trial_id=self.trial_id, attempt=attempt.number,
                                        state=JobState.SUCCEEDED.value, reason=None, exit_code=0, message="",
                                        metric_value=float(value),
                                        metric_source=",".join(sorted(set(got.sources.values()))),
                                        objective_values=got.values, final=True))
        final = {**got.values, self.plan.metric: float(value)}
        if self.held is not None:
            metrics, checkpoint = self.held
            self.held = None
            self._report({**metrics, **final}, checkpoint)
        elif not self.reported_any or self.last_value != value:
            epoch = max(self.last_reported_epoch, 0) + (0 if self.reported_any else 1)
            self.report({**final, "epoch": int(epoch), "attempt": attempt.number}, checkpoint=None)

    def _eval_fn(self, handle: JobHandle) -> float | None:
        rec = Recommendation(id=self.trial_id, specs=self.values, job_id=handle.job_id, status="success",
                             metric=self.plan.metric, state="running", results_dir=handle.results_dir)
        return coerce_metric(self.plan.eval_fn(rec, handle.job_id), source="eval_fn")

    def _cancel(self, attempt: Attempt, why: str, *, record: bool = True) -> None:
        try:
            cancel_job(self.backend, attempt.handle, check=False)
        except PlatformError:
            pass
        if record:
            self.ledger.write(StoppedEvent(trial_id=self.trial_id, attempt=attempt.number, why=why))


def run_trial(plan: TrialPlan, config: Mapping[str, Any], trial_id: str, report: Callable, pointer: dict | None) -> None:
    """Run one trial (also usable without Ray: pass any ``report`` callable)."""
    mask_env(plan.job_options.secret_env)
    ledger = JobLedger(Workspace(plan.workspace_root, plan.storage_options))
    prior = ledger.trial(trial_id)
    if prior.abandoned:
        # Abandoned on resume, but the restored search started this id again.
        ledger.write(AdoptedEvent(trial_id=trial_id, why="the restored search started this trial again"))
    if prior.done and prior.outcome is not None:
        # Already finished before a driver restart: replay, never re-run.
        value = prior.outcome.get("metric_value")
        if value is None:
            raise TrialFailed(
                f"trial {trial_id} failed before the restart: {prior.outcome.get('reason')} "
                f"{prior.outcome.get('message', '')[-300:]}"
            )
        report({**(prior.outcome.get("objective_values") or {}), plan.metric: value,
                "epoch": config.get(FIDELITY_EPOCHS) or plan.max_epochs or 1, "replayed": True})
        return
    _TrialRun(plan, config, trial_id, report).run(pointer)


def _no_report(*_: Any, **__: Any) -> None:
    raise RuntimeError("an early job is not a trial: nothing reports from it")


def launch_early(plan: TrialPlan, points: list[Mapping[str, Any]], folder: str, start: int = 0) -> int:
    """Submit one job per initial configuration (searcher configs, the order
    Tune suggests them) before Tune runs, each recorded in ``folder`` as
    ``<start + i>.json`` for the trial that adopts it
    (:mod:`tao_automl.execution.early`); returns how many were submitted.  A
    submit that fails is logged and skipped: that trial submits its own job
    (and retries) as usual."""
    return sum(launch_early_one(plan, point, folder, start + i) is not None for i, point in enumerate(points))


def launch_early_one(plan: TrialPlan, point: Mapping[str, Any], folder: str, index: int) -> JobHandle | None:
    """Submit the early job of one configuration as record ``<index>.json``;
    its handle, or None when the submit failed (recorded for the trial)."""
    run = _TrialRun(plan, point, f"early-{index}", _no_report)
    spec_path, out_dir = run._build_spec(1, None)
    request = run._request(1, spec_path, out_dir)
    record = {"key": early.config_key(run.values, run.fidelity_epochs), "name": request.name,
              "results_dir": out_dir, "spec_path": spec_path, "handle": None}
    early.write_record(folder, index, record)  # the name first: a driver killed in the submit leaves it
    try:
        handle = submit_job(run.backend, request, retries=0)
    except SubmitError as exc:
        # The trial counts this as its first try (its retries go on from there).
        log.warning("early start: job %s not submitted (%s: %s); its trial takes it from here",
                    request.name, type(exc).__name__, exc)
        early.write_record(folder, index, {**record, "error": {
            "message": str(exc), "transient": isinstance(exc, TransientSubmitError)}})
        return None
    early.write_record(folder, index, {**record, "handle": handle.to_dict(), "t": time.time()})
    return handle


def make_trainable(plan: TrialPlan) -> Callable[[dict], None]:
    """The function trainable handed to ``ray.tune.Tuner``."""

    def tao_automl_trial(config: dict) -> None:
        from ray import tune

        ctx = tune.get_context()
        pointer = _read_pointer(tune.get_checkpoint())
        run_trial(plan, config, ctx.get_trial_id(), tune.report, pointer)

    return tao_automl_trial
