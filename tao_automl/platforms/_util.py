"""Small helpers shared by the backends: kwarg validation, secret env,
artifact access over local paths or fsspec URIs, log slicing."""

from __future__ import annotations

import os
import posixpath
import re
import uuid
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from tao_automl.config.backoff import wait_until
from tao_automl.errors import (
    CredentialError,
    JobNotFoundError,
    PlatformError,
    SettingsError,
    SubmitError,
    describe,
)
from tao_automl.platforms.base import JobHandle, JobRequest, JobStatus

#: Directory (inside a results/log dir) that holds a backend's own files:
#: logs, wrapper scripts, exit-code files.  Never listed as an artifact.
CONTROL_DIR = ".tao_automl"


def poll_until_terminal(status: Callable[[], JobStatus], timeout: float, *,
                        first: float = 0.05, cap: float = 2.0) -> JobStatus:
    """Call ``status()`` with a growing backoff (``first`` doubling up to ``cap``)
    until the job is terminal or ``timeout`` seconds have passed; for backends
    without push notification of a job's end."""
    return wait_until(status, timeout, until=lambda st: st.terminal, first=first, cap=cap)


def take_options(backend: str, given: Mapping[str, Any], defaults: Mapping[str, Any]) -> dict:
    """Merge ``given`` kwargs over ``defaults``; unknown names -> SettingsError."""
    unknown = sorted(set(given) - set(defaults))
    if unknown:
        raise SettingsError.from_message(
            describe(
                f"unknown option for the {backend} platform backend",
                key=unknown[0] if len(unknown) == 1 else unknown,
                value=given[unknown[0]] if len(unknown) == 1 else ...,
                expected="one of " + ", ".join(sorted(defaults)),
            ),
            key=unknown[0],
            expected=", ".join(sorted(defaults)),
        )
    return {**defaults, **given}


_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def check_request(request: JobRequest, backend: str) -> None:
    """Refuse, before anything is created, a request whose ``env`` /
    ``secret_env`` names are not POSIX names or whose ``gpu_ids`` are not
    integers: these reach generated shell scripts (slurm, brev) and container
    specs, so a crafted name such as ``X;touch /tmp/pwned`` would run as
    shell.  Backends call this first in ``submit`` (the runner's preflight
    checks the same, but a backend may be used directly).  A secret_env entry
    is not echoed (it may be the secret itself)."""
    for key, names in (("env", list(request.env)), ("secret_env", list(request.secret_env))):
        for name in names:
            if not isinstance(name, str) or not _ENV_NAME.match(name):
                shown = name if key == "env" else (
                    f"<{type(name).__name__} of length {len(name)}, not shown>" if isinstance(name, str) else name)
                raise SubmitError.from_message(
                    describe(f"invalid environment variable name for the {backend} backend",
                             key=f"job {request.name!r} {key}", value=shown,
                             expected="a POSIX name ([A-Za-z_][A-Za-z0-9_]*)"),
                    key=key, value=shown)
    for gpu in request.gpu_ids:
        if isinstance(gpu, bool) or not isinstance(gpu, int) and not (isinstance(gpu, str) and gpu.isdigit()):
            raise SubmitError.from_message(describe(f"invalid GPU id for the {backend} backend",
                                       key=f"job {request.name!r} gpu_ids", value=gpu,
                                       expected="non-negative integers"), key="gpu_ids", value=gpu)


def secret_values(request: JobRequest) -> dict[str, str]:
    """Values of ``request.secret_env`` from this process's environment."""
    out = {}
    for name in request.secret_env:
        if name not in os.environ:
            raise CredentialError("secret environment variable is not set in the driver's environment",
                                  key=name,
                                  expected=f"'{name}' exported before submitting job {request.name!r}")
        out[name] = os.environ[name]
    return out


def safe_name(name: str, limit: int = 40) -> str:
    """A filesystem/label-safe, lower-case slug of a job name."""
    slug = re.sub(r"[^a-zA-Z0-9_.-]+", "-", name).strip("-.").lower()
    return (slug or "job")[:limit]


def unique_name(name: str) -> str:
    return f"{safe_name(name)}-{uuid.uuid4().hex[:8]}"


def is_uri(path: str | None) -> bool:
    return bool(path) and "://" in str(path) and not str(path).startswith("file://")


def local_path(path: str) -> str:
    return path[len("file://"):] if path.startswith("file://") else path


def _check_rel(handle: JobHandle, rel: str) -> str:
    norm = posixpath.normpath(rel.replace(os.sep, "/"))
    if norm.startswith("../") or norm == ".." or posixpath.isabs(norm):
        raise PlatformError("artifact path escapes the results directory", file=handle.results_dir,
                            key=handle.job_id, value=rel, expected="a path relative to results_dir")
    return norm


def _require_results(handle: JobHandle) -> str:
    if not handle.results_dir:
        raise JobNotFoundError("job has no results_dir", key=handle.job_id,
                               expected="a JobRequest.results_dir")
    return handle.results_dir


def list_artifacts(handle: JobHandle) -> list[str]:
    """Every file under ``handle.results_dir`` (relative, '/'-separated,
    sorted), leaving out :data:`CONTROL_DIR`."""
    root = _require_results(handle)
    if is_uri(root):
        import fsspec

        fs, base = fsspec.core.url_to_fs(root)
        base = base.rstrip("/")
        try:
            found = fs.find(base)
        except FileNotFoundError:
            return []
        rels = [p[len(base):].lstrip("/") for p in found]
    else:
        base_path = Path(local_path(root))
        if not base_path.is_dir():
            return []
        rels = [
            p.relative_to(base_path).as_posix()
            for p in base_path.rglob("*")
            if p.is_file() or (p.is_symlink() and not p.is_dir())
        ]
    return sorted(r for r in rels if r and not r.split("/")[0] == CONTROL_DIR)


def read_artifact(handle: JobHandle, path: str) -> bytes:
    """Bytes of one artifact; missing -> PlatformError naming the file."""
    root = _require_results(handle)
    rel = _check_rel(handle, path)
    full = root.rstrip("/") + "/" + rel
    try:
        if is_uri(root):
            import fsspec

            with fsspec.open(full, "rb") as fh:
                return fh.read()
        return Path(local_path(full)).read_bytes()
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError) as exc:
        raise PlatformError("artifact not found", file=full, key=handle.job_id, value=path,
                            expected="an existing file under results_dir") from exc
    except OSError as exc:
        raise PlatformError(f"cannot read artifact ({exc})", file=full) from exc


def read_text_from(path: str | os.PathLike, since: int = 0) -> str:
    """Text of a local file from character offset ``since`` ('' if absent)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            text = fh.read()
    except FileNotFoundError:
        return ""
    return text[max(0, since):]


def write_atomic(path: Path, text: str, mode: int = 0o644) -> None:
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    tmp.write_text(text)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def redact(text: str, secrets: Iterable[str]) -> str:
    """Replace secret values (longer than 3 chars) in ``text`` by ``***``."""
    for value in secrets:
        if value and len(value) > 3:
            text = text.replace(value, "***")
    return text
