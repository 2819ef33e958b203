"""The one path of a job: turn a skill action + a built spec into a
:class:`JobRequest`, submit it (transient submit errors retried with backoff;
a trial's ``submitting``/``submitted`` ledger events around it), watch it to
its end while streaming per-epoch metrics, read its files, cancel it.

Shared by recommendation trials, the baseline evaluation (and the defaults
run) and the final evaluation, so every job of a run is launched, retried,
read and canceled the same way; :func:`cancel_open_jobs` is the one routine
that cancels the jobs the ledger shows open (``tao-automl cancel`` and the
end-of-run reaper).
"""

from __future__ import annotations

import logging
import os
import shlex
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs

from tao_automl.config.backoff import delays, retry
from tao_automl.errors import AutoMLError, PlatformError, SpecError, TransientSubmitError
from tao_automl.execution import early
from tao_automl.planning.plan import JobOptions
from tao_automl.platforms.base import JobHandle, JobRequest, JobStatus
from tao_automl.store.events import StoppedEvent, SubmittedEvent, SubmittingEvent
from tao_automl.store.intents import recover_unconfirmed
from tao_automl.store.ledger import JobLedger

__all__ = ["JobOptions", "build_job_request", "job_files", "watch_job", "WatchResult", "submit_job",
           "artifact_reader", "cancel_job", "cancel_open_jobs", "cancel_early_jobs", "sweep_early_jobs",
           "SUBMIT_BACKOFF_S"]

log = logging.getLogger("tao_automl")

#: first pause before a submit is tried again after a TransientSubmitError (then doubled)
SUBMIT_BACKOFF_S = 1.0


def _python_for(backend: Any) -> str:
    py = getattr(backend, "python", None)
    return str(py) if py else "python"


def build_job_request(
    *,
    skill: Any,
    action: str,
    name: str,
    spec_path: str,
    results_dir: str,
    backend: Any,
    options: JobOptions,
    labels: dict[str, str] | None = None,
) -> JobRequest:
    """Build the JobRequest for ``action`` of ``skill`` reading ``spec_path``.

    ``command`` actions get ``{config_path}`` substituted (shell-quoted);
    ``execution.type == python_script`` actions become an argv
    ``[python, <skill_root>/<cwd>/<script>, *args]`` with the backend's
    interpreter: ``execution.cwd`` (relative to the skill root) only locates
    the script, which is passed as an absolute path.  Every job runs in its
    own folder (``cwd=None``: the backend uses ``results_dir``), never in the
    skill folder, so a job writing relative paths writes into its job folder
    and concurrent jobs never share files; ``PYTHONDONTWRITEBYTECODE=1``
    (unless ``env`` sets it) keeps ``__pycache__`` out of the skill folder.
    """
    info = skill.action(action)
    execution = getattr(info, "execution", None)
    command = getattr(info, "command", None)
    argv = None
    if execution is not None and getattr(execution, "type", None) == "python_script":
        base = Path(os.path.abspath(str(skill.root)))
        if getattr(execution, "cwd", None):
            c = Path(str(execution.cwd))
            base = c if c.is_absolute() else base / c
        script = Path(str(execution.script))
        if not script.is_absolute():
            script = base / script
        args = [str(a).replace("{config_path}", spec_path) for a in (execution.args or [])]
        argv = [_python_for(backend), os.path.normpath(str(script)), *args]
    elif command:
        command = str(command).replace("{config_path}", shlex.quote(spec_path))
    else:
        raise SpecError("action has neither a command nor a python_script execution",
                        file=str(Path(skill.root) / "references" / "skill_info.yaml"),
                        key=f"actions.{action}",
                        expected="'command' or 'execution: {type: python_script, ...}'")
    env = dict(options.env)
    if argv:
        # Importing the script's sibling modules must not write __pycache__
        # into the skill folder (the user's files are never changed).
        env.setdefault("PYTHONDONTWRITEBYTECODE", "1")
    image = options.image or skill.container_image(action)
    return JobRequest(
        name=name,
        command=None if argv else command,
        argv=argv,
        spec_path=spec_path,
        results_dir=results_dir,
        cwd=None,  # the backend runs the job in results_dir: its own folder
        env=env,
        secret_env=tuple(options.secret_env),
        image=image,
        gpu_count=options.gpu_count,
        gpu_ids=tuple(options.gpu_ids),
        num_nodes=options.num_nodes,
        timeout_s=options.timeout_s,
        labels=dict(labels or {}),
        options=dict(options.options),
    )


def submit_job(backend: Any, request: JobRequest, *, retries: int, ledger: JobLedger | None = None,
               intent: SubmittingEvent | None = None, node: str | None = None,
               on_submitted: Callable[[JobHandle], Any] | None = None) -> JobHandle:
    """Submit ``request``; a :class:`~tao_automl.errors.TransientSubmitError`
    is retried ``retries`` times with backoff (the last one propagates, as
    does any other :class:`~tao_automl.errors.SubmitError`).

    With ``ledger`` and ``intent`` (a trial's attempt) the intent is written
    first and the ``submitted`` event (the handle) after: a driver killed in
    between leaves the intent, and resume finds the job by name
    (:mod:`tao_automl.store.intents`).  ``on_submitted(handle)`` is called
    once the platform took the job (an evaluation writes its handle file).
    """
    if ledger is not None and intent is not None:
        ledger.write(intent)

    def again(n: int, exc: BaseException) -> None:
        log.warning("job %s: submit failed (%s); try %d of %d", request.name, exc, n + 1, retries + 1)

    handle = retry(lambda: backend.submit(request), retry_on=TransientSubmitError, retries=retries,
                   first=SUBMIT_BACKOFF_S, on_retry=again)
    if ledger is not None and intent is not None:
        ledger.write(SubmittedEvent(
            trial_id=intent.trial_id, attempt=intent.attempt, handle=handle.to_dict(),
            spec_path=intent.spec_path, resume_from=intent.resume_from, start_epoch=intent.start_epoch,
            purpose=intent.purpose, node=node))
    if on_submitted is not None:
        on_submitted(handle)
    return handle


def cancel_job(backend: Any, handle: JobHandle, *, check: bool = True) -> str:
    """Cancel the job: ``"canceled"``, or ``"already finished"`` when
    ``check`` and the platform says it ended (a status error cancels anyway:
    cancel is idempotent).  A cancel that fails raises its PlatformError."""
    if check:
        try:
            if backend.status(handle).terminal:
                return "already finished"
        except PlatformError:
            pass
    backend.cancel(handle)
    return "canceled"


def cancel_open_jobs(ledger: JobLedger, backend: Any, why: str) -> list[dict[str, Any]]:
    """Cancel every job the ledger shows open -- a submit never confirmed is
    looked up first -- and record each one ``stopped`` with ``why``.  One
    entry per job: ``{"trial_id", "job_id", "action": "canceled" | "already
    finished" | "error: ..."}`` (an error is logged; that attempt stays open)."""
    recover_unconfirmed(ledger, backend)
    out: list[dict[str, Any]] = []
    for trial_id, att in ledger.open_attempts():
        entry: dict[str, Any] = {"trial_id": trial_id, "job_id": att.handle.job_id}
        try:
            entry["action"] = cancel_job(backend, att.handle)
            ledger.write(StoppedEvent(trial_id=trial_id, attempt=att.number, why=why))
        except PlatformError as exc:
            entry["action"] = f"error: {exc}"
            log.warning("could not cancel job %s of trial %s: %s", att.handle.job_id, trial_id, exc)
        out.append(entry)
    return out + cancel_early_jobs(ledger, backend, why)


def cancel_early_jobs(ledger: JobLedger, backend: Any, why: str) -> list[dict[str, Any]]:
    """Cancel the early-start jobs (:mod:`tao_automl.execution.early`) that no
    trial adopted, or that a trial took but never recorded (a driver killed
    in between); entries as :func:`cancel_open_jobs` gives them."""
    if ledger.ws.uri:
        return []  # early start runs on local workspaces only
    known = {att.handle.job_id for rec in ledger.trials(include_abandoned=True) for att in rec.attempts}
    return sweep_early_jobs(ledger.ws.path(early.EARLY_DIR), backend, why, adopted_job_ids=known)


def sweep_early_jobs(folder: str | None, backend: Any, why: str, *,
                     adopted_job_ids: Any = None, below: int | None = None) -> list[dict[str, Any]]:
    """Cancel the early jobs nobody adopted (:func:`tao_automl.execution.early.unadopted`;
    ``below``: only those numbered lower), each once: ``{"trial_id":
    "early-<i>", "job_id", "action"}`` per job, each logged as a warning with
    ``why``.  A record without a handle (a driver killed inside the submit)
    is looked up by name."""
    out: list[dict[str, Any]] = []
    for label, rec in early.unadopted(folder, adopted_job_ids=adopted_job_ids, below=below):
        entry: dict[str, Any] = {"trial_id": label, "job_id": (rec.get("handle") or {}).get("job_id")}
        try:
            if rec.get("handle"):
                handles = [JobHandle.from_dict(rec["handle"])]
            elif getattr(backend, "find", None) is None:
                handles = None
            else:
                handles = list(backend.find(rec.get("name") or "", rec.get("results_dir")))
            if handles is None:
                entry["action"] = f"not found: backend {getattr(backend, 'name', backend)} cannot look jobs up by name"
            else:
                entry["action"] = ", ".join(cancel_job(backend, h) for h in handles) or "no job"
        except PlatformError as exc:
            entry["action"] = f"error: {exc}"
        log.warning("%s (job %s) adopted by no trial: %s (%s)", label, entry["job_id"], entry["action"], why)
        out.append(entry)
    return out


def artifact_reader(backend: Any, handle: JobHandle) -> Callable[[str], bytes | None]:
    """``read(rel) -> bytes | None``: one file of the job (None when it cannot be read)."""

    def read(rel: str) -> bytes | None:
        try:
            return backend.read_artifact(handle, rel)
        except (AutoMLError, OSError):
            return None

    return read


def job_files(backend: Any, handle: JobHandle) -> list[str] | None:
    """The job's files (``backend.list_artifacts``), so the metric readers
    also find ``metrics.json``/``status.json`` inside an output routed to a
    sub-folder of the job folder; ``None`` (read top-level names only) when
    the backend cannot list them."""
    try:
        return list(backend.list_artifacts(handle))
    except (AutoMLError, OSError):
        return None


@attrs.define
class WatchResult:
    """What watching a job produced."""

    status: JobStatus
    logs: str
    records: list[Any]


def watch_job(
    backend: Any,
    handle: JobHandle,
    *,
    stream: Any,
    on_record: Callable[[Any], None] | None = None,
    poll_s: float = 1.0,
    status_errors: int = 5,
) -> WatchResult:
    """Follow a job until it is terminal.

    ``backend.wait`` returns as soon as the job ends, so a fast job is noticed
    at once; ``poll_s`` only bounds how long new log lines wait to be parsed.
    ``on_record`` is called for each new per-epoch record (it may raise to
    stop watching, e.g. Tune's SystemExit on a stop decision).  Transient
    status errors are tolerated ``status_errors`` times in a row, with backoff.
    """
    offset = 0
    chunks: list[str] = []
    records: list[Any] = []
    failures = 0
    pauses = delays(0.25, cap=5.0)
    wait = min(0.05, poll_s)
    while True:
        try:
            status = backend.wait(handle, timeout=wait)
            failures = 0
            pauses = delays(0.25, cap=5.0)
        except PlatformError:
            failures += 1
            if failures > status_errors:
                raise
            time.sleep(next(pauses))
            continue
        text = backend.logs(handle, since=offset)
        if text:
            offset += len(text)
            chunks.append(text)
            for rec in stream.feed(text):
                records.append(rec)
                if on_record is not None:
                    on_record(rec)
            wait = min(0.05, poll_s)
        else:
            wait = min(wait * 2, poll_s)
        if status.terminal:
            # Drain what was written between the last read and the exit.
            tail = backend.logs(handle, since=offset)
            if tail:
                chunks.append(tail)
                offset += len(tail)
                for rec in stream.feed(tail + "\n"):
                    records.append(rec)
                    if on_record is not None:
                        on_record(rec)
            return WatchResult(status=status, logs="".join(chunks), records=records)
