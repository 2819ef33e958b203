"""The platform contract: plain-data job requests, handles and statuses, and
the :class:`PlatformBackend` protocol every backend implements.

Lifecycle of one job::

    handle = backend.submit(request)        # returns at once; job runs elsewhere
    while not (st := backend.status(handle)).terminal:
        backend.wait(handle, timeout=1.0)   # returns early when the job ends
        new_text = backend.logs(handle, since=offset)
    backend.list_artifacts(handle); backend.read_artifact(handle, "status.json")
    backend.cleanup(handle)                 # optional; removes scratch, never results

``JobHandle`` is plain data (``to_dict``/``from_dict``) so a restarted driver
can reattach to a job that is still running.  Secrets are passed to jobs by
*name* (``JobRequest.secret_env``): the backend copies the value from its own
environment at submit time and never writes it to a log, a spec or a handle.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

import attrs

from tao_automl.errors import SubmitError

__all__ = [
    "JobState",
    "FailureReason",
    "JobRequest",
    "JobHandle",
    "JobStatus",
    "PathState",
    "PathCheck",
    "PlatformBackend",
]


class JobState(enum.StrEnum):
    """State of a job on its platform."""

    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"
    UNKNOWN = "unknown"

    @property
    def terminal(self) -> bool:
        return self in (JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELED)


class FailureReason(enum.StrEnum):
    """Why a terminal job did not succeed (root-cause classes from the seeds)."""

    INFRASTRUCTURE = "infrastructure"
    DATA = "data"
    IMAGE = "image"
    CREDENTIAL = "credential"
    SPEC = "spec"
    PROGRAM = "program"
    TIMEOUT = "timeout"
    OOM = "oom"
    PREEMPTED = "preempted"
    CANCELED = "canceled"

    @property
    def retryable(self) -> bool:
        """Failures that a relaunch of the same configuration may cure."""
        return self in (FailureReason.INFRASTRUCTURE, FailureReason.PREEMPTED)


def _str_map(value: Mapping[str, Any] | None) -> dict[str, str]:
    return {str(k): str(v) for k, v in (value or {}).items()}


@attrs.frozen(kw_only=True)
class JobRequest:
    """Everything a backend needs to launch one job.

    Exactly one of ``command`` (a shell command line; ``{config_path}`` is
    already substituted) or ``argv`` (an argument vector, e.g. a
    ``python_script`` execution) is set.

    Attributes:
        name: human-readable job name (trial id, ``baseline-eval``...).
        command: shell command line, run with ``bash -c`` (or inside the image).
        argv: argument vector, run without a shell.
        spec_path: the written spec file the job reads.
        results_dir: where the job writes checkpoints/status files.
        cwd: working directory for the job (local/slurm); ``None`` = results_dir.
        env: plain environment variables for the job.
        secret_env: *names* of environment variables whose values the backend
            copies from its own environment; values are never stored.
        image: container image (docker/kubernetes/brev; ignored by local).
        gpu_count: platform-agnostic GPU count per node.
        gpu_ids: explicit GPU ids (local: CUDA_VISIBLE_DEVICES).
        num_nodes: node count.
        timeout_s: wall-clock limit; exceeded -> FAILED with reason TIMEOUT.
        labels: free-form labels (experiment, trial id) for backends that tag jobs.
        options: backend-specific options (partition, account, mounts, ...).
    """

    name: str
    command: str | None = None
    argv: tuple[str, ...] | None = attrs.field(
        default=None, converter=lambda v: None if v is None else tuple(str(x) for x in v)
    )
    spec_path: str | None = None
    results_dir: str | None = None
    cwd: str | None = None
    env: dict[str, str] = attrs.field(factory=dict, converter=_str_map)
    secret_env: tuple[str, ...] = attrs.field(default=(), converter=tuple)
    image: str | None = None
    gpu_count: int = 0
    gpu_ids: tuple[int, ...] = attrs.field(default=(), converter=tuple)
    num_nodes: int = 1
    timeout_s: float | None = None
    labels: dict[str, str] = attrs.field(factory=dict, converter=_str_map)
    options: dict[str, Any] = attrs.field(factory=dict)

    def __attrs_post_init__(self) -> None:
        if (self.command is None) == (self.argv is None):
            raise SubmitError("JobRequest needs exactly one of command/argv", key=f"job {self.name!r}",
                              value={"command": self.command, "argv": self.argv},
                              expected="a shell command string or an argument vector, not both")


@attrs.frozen(kw_only=True)
class JobHandle:
    """Serializable reference to a submitted job.

    Attributes:
        backend: backend kind (``local``, ``slurm``, ``docker``, ``kubernetes``, ``brev``).
        job_id: the platform's own id (pid, SLURM job id, container id, Job name).
        name: the request's name.
        results_dir: where the job's outputs live (as the driver sees them).
        data: backend-specific plain data needed to reattach (log paths, pgid...).
    """

    backend: str
    job_id: str
    name: str = ""
    results_dir: str | None = None
    data: dict[str, Any] = attrs.field(factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> JobHandle:
        return cls(**{k: d[k] for k in ("backend", "job_id", "name", "results_dir", "data") if k in d})


@attrs.frozen(kw_only=True)
class JobStatus:
    """A job's state; terminal failures carry a classified reason and exit code."""

    state: JobState
    reason: FailureReason | None = None
    exit_code: int | None = None
    message: str = ""

    @property
    def terminal(self) -> bool:
        return self.state.terminal

    @property
    def succeeded(self) -> bool:
        return self.state is JobState.SUCCEEDED


class PathState(enum.StrEnum):
    """Whether a path can be read where the backend runs its jobs."""

    READABLE = "readable"
    UNREADABLE = "unreadable"  # missing or not readable there: a blocker
    UNVERIFIED = "unverified"  # the backend cannot tell from here: shown, not a failure


@attrs.frozen(kw_only=True)
class PathCheck:
    """A backend's answer for one path: its state, why, and where it was checked.

    Attributes:
        state: readable / unreadable / unverified.
        reason: why (always set unless readable), e.g. ``does not exist on node n1``.
        where: where the check ran (``this machine``, ``SLURM node n1 (srun)``...).
    """

    state: PathState = attrs.field(converter=PathState)
    reason: str = ""
    where: str = ""

    @property
    def readable(self) -> bool:
        return self.state is PathState.READABLE

    @property
    def unreadable(self) -> bool:
        return self.state is PathState.UNREADABLE


@runtime_checkable
class PlatformBackend(Protocol):
    """What every platform backend implements.

    Implementations map their foreign errors into :class:`~tao_automl.errors.PlatformError`
    subclasses.  All methods are safe to call from several threads.

    Optional: ``find(name, results_dir=None) -> list[JobHandle]`` (oldest
    first) looks jobs up by the name they were submitted under.  A resumed run
    uses it to settle a job whose submit was cut short by a driver crash
    (:mod:`tao_automl.store.intents`); the local, SLURM, Docker and
    Kubernetes backends have it (Brev and the TAO SDK adapter do not), and
    without it such a job is only logged.

    Optional: ``check_paths(paths) -> dict[str, PathCheck]`` answers, for
    each dataset path, whether it is readable *where the jobs run* (the local
    file system, a SLURM node, the host side of a container's mounts...).
    Preflight calls it before anything is launched: ``review()`` lists an
    unreadable path as a blocker, ``run()`` refuses it.  A backend that cannot
    tell answers ``unverified`` with a reason; a backend without the method is
    treated as answering ``unverified`` for every path
    (:func:`tao_automl.platforms.paths.check_paths`).
    """

    name: str

    def submit(self, request: JobRequest) -> JobHandle:
        """Launch a job and return at once."""
        ...

    def status(self, handle: JobHandle) -> JobStatus:
        """Current state; terminal failures carry reason and exit code."""
        ...

    def wait(self, handle: JobHandle, timeout: float) -> JobStatus:
        """Block up to ``timeout`` seconds, returning as soon as the job ends.
        Backends without push notifications poll with a short backoff."""
        ...

    def logs(self, handle: JobHandle, since: int = 0) -> str:
        """Log text from character offset ``since`` (stdout+stderr merged)."""
        ...

    def cancel(self, handle: JobHandle) -> None:
        """Stop the job (graceful first, then forced). Idempotent."""
        ...

    def list_artifacts(self, handle: JobHandle) -> list[str]:
        """Paths relative to ``results_dir`` of every file the job produced."""
        ...

    def read_artifact(self, handle: JobHandle, path: str) -> bytes:
        """Content of one artifact (relative path)."""
        ...

    def cleanup(self, handle: JobHandle) -> None:
        """Release platform resources (containers, Job objects, scratch). Never
        deletes the results directory."""
        ...
