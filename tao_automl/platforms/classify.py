"""Failure classification shared by every backend.

:func:`classify_failure` turns an exit code, platform hints (OOM-killed,
deadline exceeded, image pull failure...) and the tail of a job's log into a
:class:`~tao_automl.platforms.base.FailureReason` plus a one-line message.
Platform evidence wins over log evidence; log evidence wins over the bare
exit code.  The rules are ordered and the first match decides.
"""

from __future__ import annotations

import re
import signal

from tao_automl.platforms.base import FailureReason

__all__ = ["classify_failure", "LOG_RULES", "exit_code_from_status", "describe_exit"]

#: Ordered (reason, compiled regex) pairs applied to the log tail.
LOG_RULES: tuple[tuple[FailureReason, re.Pattern[str]], ...] = tuple(
    (reason, re.compile(pattern, re.IGNORECASE | re.MULTILINE))
    for reason, pattern in (
        (FailureReason.OOM, r"CUDA out of memory|OutOfMemoryError|\bMemoryError\b|"
                            r"out of memory|oom-kill|Killed process \d+|std::bad_alloc|"
                            r"Exceeded job memory limit|CUBLAS_STATUS_ALLOC_FAILED"),
        (FailureReason.IMAGE, r"ModuleNotFoundError|No module named|ImportError|"
                              r"command not found|exec format error|"
                              r"pull access denied|manifest unknown|ErrImagePull|ImagePullBackOff|"
                              r"executable file not found|Unable to find image"),
        (FailureReason.CREDENTIAL, r"PermissionError|Permission denied|AccessDenied|"
                                   r"InvalidAccessKeyId|SignatureDoesNotMatch|ExpiredToken|"
                                   r"NoCredentialsError|Unable to locate credentials|"
                                   r"401 Client Error|403 Client Error|Unauthorized|"
                                   r"invalid (?:api )?(?:key|token)|authentication failed"),
        (FailureReason.DATA, r"FileNotFoundError|No such file or directory|NoSuchKey|NoSuchBucket|"
                             r"(?:dataset|annotation|image)s? (?:not found|is empty|missing)|"
                             r"UnidentifiedImageError|corrupt(?:ed)? (?:file|image|data)"),
        (FailureReason.SPEC, r"yaml\.(?:scanner|parser|constructor)\.|ScannerError|ParserError|"
                             r"ConfigKeyError|ConfigAttributeError|MissingMandatoryValue|"
                             r"ValidationError|Key '[^']+' (?:not in|is not in)|"
                             r"omegaconf\.errors|hydra\.errors|Unrecognized (?:config|spec) key|"
                             r"JSONDecodeError|TOMLDecodeError|KeyError: '[^']*'"),
        (FailureReason.INFRASTRUCTURE, r"NCCL (?:error|WARN.*timeout)|Connection reset by peer|"
                                       r"No space left on device|Bus error|"
                                       r"Socket timed out|node failure|Input/output error"),
    )
)

_TAIL_CHARS = 64_000


def describe_exit(exit_code: int | None) -> str:
    """``"exit code 3"`` or ``"killed by SIGKILL (exit code 137)"``."""
    if exit_code is None:
        return "no exit code"
    if exit_code > 128:
        try:
            return f"killed by {signal.Signals(exit_code - 128).name} (exit code {exit_code})"
        except ValueError:
            pass
    if exit_code < 0:
        try:
            return f"killed by {signal.Signals(-exit_code).name}"
        except ValueError:
            pass
    return f"exit code {exit_code}"


def exit_code_from_status(status: int) -> int:
    """Normalize a ``Popen.returncode``-style value (negative = signal) to the
    shell convention (128 + signal)."""
    return 128 - status if status < 0 else status


def _first_line(match: re.Match[str], text: str) -> str:
    start = text.rfind("\n", 0, match.start()) + 1
    end = text.find("\n", match.end())
    line = text[start : end if end >= 0 else len(text)].strip()
    return line[:300]


def classify_failure(
    exit_code: int | None,
    log_text: str = "",
    *,
    oom_killed: bool = False,
    timed_out: bool = False,
    platform_reason: FailureReason | None = None,
    platform_message: str = "",
) -> tuple[FailureReason, str]:
    """Classify a failed job.

    Args:
        exit_code: the job's exit code (shell convention; ``None`` if unknown).
        log_text: the job's log (only the last 64k characters are read).
        oom_killed: the platform reports an out-of-memory kill.
        timed_out: the job hit its wall-clock limit.
        platform_reason: a reason the platform itself established (preempted,
            node failure, image pull...); used unless OOM/timeout evidence wins.
        platform_message: text to put in the message with ``platform_reason``.

    Returns:
        ``(reason, message)``; the message quotes the deciding log line.
    """
    what = describe_exit(exit_code)
    if timed_out:
        return FailureReason.TIMEOUT, f"job exceeded its time limit ({what})"
    if oom_killed:
        return FailureReason.OOM, f"job was killed for running out of memory ({what})"
    if platform_reason is not None:
        return platform_reason, platform_message or f"{platform_reason.value} failure ({what})"
    tail = log_text[-_TAIL_CHARS:] if log_text else ""
    for reason, pattern in LOG_RULES:
        matches = list(pattern.finditer(tail))
        found = matches[-1] if matches else None  # the last one is closest to the failure
        if found is not None:
            return reason, f"{what}: {_first_line(found, tail)}"
    if exit_code == 127:
        return FailureReason.IMAGE, f"{what}: command not found in the job's environment"
    if exit_code == 126:
        return FailureReason.IMAGE, f"{what}: command found but not executable"
    if exit_code == 137:
        return FailureReason.PROGRAM, f"{what} without out-of-memory evidence in the log"
    return FailureReason.PROGRAM, f"job failed with {what}"
