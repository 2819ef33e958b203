"""SLURM vocabulary: job states, ``ExitCode N:S`` values, sbatch errors, and
parsers for ``sacct -P``, ``squeue`` and ``scontrol show job -o`` output."""

from __future__ import annotations

import re

from tao_automl.errors import SubmitError, TransientSubmitError
from tao_automl.platforms.base import FailureReason, JobState

__all__ = ["map_state", "parse_exit_code", "parse_scontrol", "parse_sacct", "sbatch_error"]

_RUNNING = {"RUNNING", "COMPLETING", "CONFIGURING", "RESIZING", "SIGNALING", "STAGE_OUT",
            "SUSPENDED", "STOPPED", "UPDATE_DB", "POWER_UP_NODE"}
_PENDING = {"PENDING", "REQUEUED", "REQUEUE_FED", "REQUEUE_HOLD", "RESV_DEL_HOLD"}
# terminal failure states -> reason fixed by the scheduler (None = classify the log)
_FAILED: dict[str, FailureReason | None] = {
    "FAILED": None,
    "SPECIAL_EXIT": None,
    "TIMEOUT": FailureReason.TIMEOUT,
    "DEADLINE": FailureReason.TIMEOUT,
    "PREEMPTED": FailureReason.PREEMPTED,
    "NODE_FAIL": FailureReason.INFRASTRUCTURE,
    "BOOT_FAIL": FailureReason.INFRASTRUCTURE,
    "LAUNCH_FAILED": FailureReason.INFRASTRUCTURE,
    "REVOKED": FailureReason.INFRASTRUCTURE,
    "OUT_OF_MEMORY": FailureReason.OOM,
}


def map_state(raw: str) -> tuple[JobState, FailureReason | None]:
    """Map a SLURM state (``"CANCELLED by 0"``, ``"RUNNING+"`` ...) to ours.

    REQUEUED jobs wait in the queue, so they are PENDING; SPECIAL_EXIT (held
    after a special exit code) is a failure; SUSPENDED/STOPPED jobs hold their
    allocation and are RUNNING; COMPLETED is SUCCEEDED only with exit code 0
    (the caller checks).
    """
    state = raw.strip().split()[0].rstrip("+*").upper() if raw.strip() else ""
    if state in _RUNNING:
        return JobState.RUNNING, None
    if state in _PENDING:
        return JobState.PENDING, None
    if state == "COMPLETED":
        return JobState.SUCCEEDED, None
    if state == "CANCELLED":
        return JobState.CANCELED, FailureReason.CANCELED
    if state in _FAILED:
        return JobState.FAILED, _FAILED[state]
    return JobState.UNKNOWN, None


def parse_exit_code(value: str | None) -> int | None:
    """``"N:S"`` -> N, or 128+S when a signal S ended the job; None if absent."""
    if not value:
        return None
    m = re.fullmatch(r"\s*(\d+)(?::(\d+))?\s*", value)
    if not m:
        return None
    code, sig = int(m.group(1)), int(m.group(2) or 0)
    return 128 + sig if sig else code


def parse_scontrol(text: str) -> dict[str, str]:
    """``scontrol show job -o`` one-liner -> dict of its ``Key=Value`` fields."""
    out: dict[str, str] = {}
    for m in re.finditer(r"(\S+?)=(\S*)", text.strip().splitlines()[0] if text.strip() else ""):
        out.setdefault(m.group(1), m.group(2))
    return out


def parse_sacct(text: str, job_id: str) -> dict[str, str] | None:
    """The allocation row of ``sacct -n -P -o JobID,State,ExitCode,Reason``."""
    for line in text.splitlines():
        parts = line.split("|")
        if len(parts) >= 3 and parts[0] == job_id:
            return {"State": parts[1], "ExitCode": parts[2],
                    "Reason": parts[3] if len(parts) > 3 else ""}
    return None


_TRANSIENT = re.compile(
    r"Socket timed out|Unable to contact slurm controller|temporarily unable|"
    r"Resource temporarily unavailable|Connection refused|Zero Bytes were transmitted|"
    r"Slurm backup controller in standby|slurm_load_.*timed out|Connection timed out|"
    r"Communication connection failure|Could not resolve hostname|Connection reset",
    re.IGNORECASE,
)


def sbatch_error(stderr: str, rc: int, options: dict, *, ssh: bool = False) -> SubmitError:
    """Map a failed ``sbatch`` call to SubmitError / TransientSubmitError."""
    text = stderr.strip() or f"sbatch exited with code {rc}"
    if _TRANSIENT.search(text) or (ssh and rc == 255):
        return TransientSubmitError(f"sbatch failed, may succeed on retry: {text}", key="sbatch")
    for key, pattern in (("partition", r"invalid partition"), ("account", r"invalid account"),
                         ("qos", r"invalid qos"), ("time_limit", r"time limit|invalid time")):
        if re.search(pattern, text, re.IGNORECASE):
            return SubmitError(f"sbatch refused the job: {text}", key=key, value=options.get(key),
                               expected=f"a {key} this cluster accepts")
    return SubmitError(f"sbatch refused the job: {text}", key="sbatch")
