"""Adapter backend for NVIDIA TAO SDK platform objects (``nvidia-tao-sdk``).

``AutoMLRunner(sdk=VirtualEnvSDK(...))`` (or ``DockerSDK``, ``SlurmSDK``,
``KubernetesSDK``, ``BrevSDK``, or any object with the same methods) runs its
jobs through :class:`TaoSdkBackend`, which maps our :class:`PlatformBackend`
contract onto the SDK's two protocols:

* ``PythonScriptSDK`` (``create_python_job``): a ``python_script`` action's
  argv becomes ``script`` + ``script_args`` (the SDK's own interpreter runs
  it); a shell command runs through a tiny stdlib shim (``_sdk_shell.py``)
  that execs ``bash -c``.
* ``PlatformSDK`` (``create_job(image, command, ...)``): the command (argv
  shell-quoted) runs in ``request.image``, after ``cd`` to the job's working
  directory.

Status words map ``Pending`` -> pending, ``Running``/``Paused``/``Canceling``
-> running, ``Complete`` -> succeeded, ``Error`` -> failed (exit code and
category from ``get_failure_analysis``), ``Canceled`` -> canceled.  Timeouts
(``JobRequest.timeout_s``) are enforced here: the job is canceled and reported
as ``failed``/``timeout``.  The handle is plain data holding the SDK job id,
so a new driver with a new SDK object over the same state store reattaches.

Artifacts are read from ``results_dir`` (where our specs route outputs) and,
when the SDK offers ``list_results``/``read_job_result_file``, from the SDK's
own per-job results folder.

SDK objects hold threads, locks and database connections, so they cannot be
pickled to Ray's trial workers.  The SDK object stays in the driver; the
backend sent to a worker calls it through a local socket
(:mod:`multiprocessing.connection`, random auth key), so every job of a run
goes through the one SDK object the caller configured.  Trial workers must
therefore run on the driver's machine (a local Ray, the default).
"""

from __future__ import annotations

import inspect
import os
import shlex
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from tao_automl.errors import (
    AutoMLError,
    JobNotFoundError,
    PlatformError,
    SettingsError,
    SubmitError,
    describe,
)
from tao_automl.platforms import _util
from tao_automl.platforms.base import FailureReason, JobHandle, JobRequest, JobState, JobStatus
from tao_automl.platforms.classify import classify_failure

__all__ = ["TaoSdkBackend", "is_tao_sdk", "SDK_METHODS"]

#: Methods the adapter may call on an SDK object (the rest are never used).
SDK_METHODS = (
    "create_job", "create_python_job", "get_job_status", "get_job_logs", "cancel_job",
    "get_failure_analysis", "get_checkpoints", "get_job_results_dir", "read_job_result_file",
    "list_results",
)
_STATES = {
    "pending": JobState.PENDING, "queued": JobState.PENDING,
    "running": JobState.RUNNING, "paused": JobState.RUNNING, "canceling": JobState.RUNNING,
    "complete": JobState.SUCCEEDED, "completed": JobState.SUCCEEDED, "done": JobState.SUCCEEDED,
    "error": JobState.FAILED, "failed": JobState.FAILED,
    "canceled": JobState.CANCELED, "cancelled": JobState.CANCELED,
}
_CATEGORY = {"out_of_memory": FailureReason.OOM, "lost_process": FailureReason.INFRASTRUCTURE}
#: create_* parameters the adapter fills itself (a platform kwarg cannot set them).
_MANAGED = {"image", "command", "script", "specs", "config_format", "script_args", "cwd",
            "gpu_count", "gpu_ids", "env_vars", "action"}
_SHIM = str(Path(__file__).with_name("_sdk_shell.py"))


def is_tao_sdk(obj: Any) -> bool:
    """True for an object shaped like a TAO SDK platform (``PlatformSDK`` or
    ``PythonScriptSDK``) that is not already a tao_automl backend."""
    if obj is None or isinstance(obj, str) or callable(getattr(obj, "submit", None)):
        return False
    has = lambda n: callable(getattr(obj, n, None))  # noqa: E731
    return (has("create_job") or has("create_python_job")) and all(
        has(n) for n in ("get_job_status", "get_job_logs", "cancel_job"))


def _params(fn: Any) -> tuple[set[str], bool]:
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return set(), True
    names = {p.name for p in sig.parameters.values()
             if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}
    return names, any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values())


class TaoSdkBackend:
    """A :class:`PlatformBackend` over one TAO SDK platform object.

    Keyword options (``run(...)`` platform kwargs): ``env_vars`` (merged into
    the job environment, nvidia-tao-automl's spelling), ``poll_interval_s``
    (longest pause between status calls in ``wait``, default 0.25), and any
    keyword the SDK's ``create_job``/``create_python_job`` accepts
    (``mounts``, ``partition``, ``instance_id``, ``inputs``...), passed on
    unchanged.  Anything else is a SettingsError naming the accepted ones.
    """

    name = "tao_sdk"
    OPTIONS = {"poll_interval_s": 0.25, "env_vars": None}

    def __init__(self, sdk: Any, **kwargs: Any) -> None:
        if not is_tao_sdk(sdk):
            raise SettingsError("not a TAO SDK platform object", key="sdk", value=type(sdk).__name__,
                                expected="an object with create_job or create_python_job, get_job_status, "
                                         "get_job_logs and cancel_job (nvidia-tao-sdk's PlatformSDK / PythonScriptSDK)")
        self._sdk = sdk
        self.kind = getattr(sdk, "_tao_kind", None) or type(sdk).__name__
        self._methods = tuple(n for n in SDK_METHODS if callable(getattr(sdk, n, None)))
        self._extra: dict[str, Any] = {}
        self._opts = dict(self.OPTIONS)
        self._server: _SdkServer | None = None
        self.configure(**kwargs)

    # ------------------------------------------------------------- options
    def accepted(self) -> list[str]:
        names: set[str] = set(self.OPTIONS)
        for meth in ("create_job", "create_python_job"):
            if meth in self._methods:
                params, _ = _params(getattr(self._sdk, meth))
                names |= params - _MANAGED
        return sorted(names)

    def configure(self, **kwargs: Any) -> None:
        """Set options (see the class docstring); unknown names are an error."""
        accepted = set(self.accepted())
        open_kwargs = any(_params(getattr(self._sdk, m))[1] for m in ("create_job",)
                          if m in self._methods and not isinstance(self._sdk, _RemoteSdk))
        for key, value in kwargs.items():
            if key in self.OPTIONS:
                if key == "env_vars" and value is not None and not isinstance(value, dict):
                    raise SettingsError("invalid platform kwarg", key=key, value=value,
                                        expected="a mapping of names to values")
                self._opts[key] = value
            elif key in accepted or (open_kwargs and key not in _MANAGED):
                self._extra[key] = value
            else:
                raise SettingsError.from_message(
                    describe(f"unknown option for the TAO SDK platform {self.kind}", key=key,
                             value=value, expected="one of " + ", ".join(sorted(accepted))),
                    key=key, expected=", ".join(sorted(accepted)))

    # ------------------------------------------------------------ contract
    def submit(self, request: JobRequest) -> JobHandle:
        secrets = _util.secret_values(request)
        env = {**(self._opts.get("env_vars") or {}), **request.env, **secrets}
        cwd = request.cwd or request.results_dir
        if cwd and not _util.is_uri(cwd):
            Path(_util.local_path(cwd)).mkdir(parents=True, exist_ok=True)
        extra = {**self._extra, **{k: v for k, v in request.options.items() if k not in _MANAGED}}
        try:
            if "create_python_job" in self._methods and (request.argv or not request.image
                                                         or "create_job" not in self._methods):
                job = self._python_job(request, env, cwd, extra)
            elif "create_job" in self._methods:
                job = self._container_job(request, env, cwd, extra)
            else:
                raise SubmitError("the TAO SDK platform cannot run this job", key=request.name,
                                  value=self.kind, expected="create_python_job or create_job")
        except (SubmitError, SettingsError):
            raise
        except Exception as exc:  # foreign SDK errors -> our tree, secrets redacted
            raise SubmitError(_util.redact(
                describe(f"TAO SDK {self.kind} refused the job ({type(exc).__name__}: {exc})",
                         key=request.name), secrets.values())) from exc
        job_id = str(getattr(job, "id", None) or (job.get("job_id") if isinstance(job, dict) else job))
        handle = JobHandle(
            backend=self.name, job_id=job_id, name=request.name, results_dir=request.results_dir,
            data={"sdk": self.kind, "submitted_at": time.time(), "timeout_s": request.timeout_s,
                  "secret_env": list(request.secret_env),
                  "sdk_results_dir": str(getattr(job, "results_dir", "") or "")},
        )
        self._control_write(handle, "handle", _json(handle.to_dict()))
        return handle

    def _python_job(self, request: JobRequest, env: dict, cwd: str | None, extra: dict) -> Any:
        argv = list(request.argv or ())
        if argv and os.path.basename(argv[0]).startswith("python") and len(argv) > 1 \
                and argv[1].endswith(".py"):
            script, args = argv[1], argv[2:]
        else:
            script, args = _SHIM, [request.command if request.command is not None else shlex.join(argv)]
        kwargs: dict[str, Any] = dict(script=script, script_args=args, env_vars=env,
                                      gpu_count=request.gpu_count, **extra)
        if cwd and not _util.is_uri(cwd):
            kwargs["cwd"] = _util.local_path(cwd)
        if request.gpu_ids:
            kwargs["gpu_ids"] = list(request.gpu_ids)
        fmt = Path(request.spec_path).suffix.lstrip(".") if request.spec_path else ""
        if fmt in ("json", "yaml", "toml"):
            kwargs["config_format"] = fmt
        return self._sdk.create_python_job(**kwargs)

    def _container_job(self, request: JobRequest, env: dict, cwd: str | None, extra: dict) -> Any:
        if not request.image:
            raise SubmitError("a container TAO SDK platform needs an image", key="image", value=None,
                              expected=f"the skill's container image or run(image=...) for {self.kind}")
        command = request.command if request.command is not None else shlex.join(request.argv or ())
        if cwd and not _util.is_uri(cwd):
            command = f"mkdir -p {shlex.quote(cwd)} && cd {shlex.quote(cwd)} && {command}"
        return self._sdk.create_job(image=request.image, command=command,
                                    gpu_count=request.gpu_count, env_vars=env, **extra)

    def status(self, handle: JobHandle) -> JobStatus:
        state, message = self._state(handle)
        timed_out = self._control_exists(handle, "timeout")
        if not state.terminal and not timed_out:
            limit = handle.data.get("timeout_s")
            started = float(handle.data.get("submitted_at") or time.time())
            if limit and time.time() - started > float(limit):
                self._control_write(handle, "timeout", str(time.time()))
                self._call("cancel_job", handle.job_id)
                timed_out = True
                state, message = self._state(handle)
        if state is JobState.SUCCEEDED:
            return JobStatus(state=state, exit_code=0, message=message)
        if state is JobState.CANCELED:
            if timed_out:
                reason, msg = classify_failure(None, "", timed_out=True)
                return JobStatus(state=JobState.FAILED, reason=reason, message=msg)
            return JobStatus(state=state, reason=FailureReason.CANCELED, message=message or "canceled")
        if state is JobState.FAILED:
            analysis = self._call("get_failure_analysis", handle.job_id) \
                if "get_failure_analysis" in self._methods else None
            analysis = analysis if isinstance(analysis, dict) else {}
            code = analysis.get("return_code", analysis.get("exit_code"))
            code = code if isinstance(code, int) and not isinstance(code, bool) else None
            if code is not None and code < 0:
                code = 128 - code  # killed by signal N -> shell convention 128+N
            logs = self.logs(handle)
            platform_reason = _CATEGORY.get(str(analysis.get("category") or ""))
            reason, msg = classify_failure(code, logs, timed_out=timed_out,
                                           oom_killed=platform_reason is FailureReason.OOM,
                                           platform_reason=platform_reason,
                                           platform_message=str(analysis.get("reason") or message))
            return JobStatus(state=state, reason=reason, exit_code=code, message=msg)
        return JobStatus(state=state, message=message)

    def _state(self, handle: JobHandle) -> tuple[JobState, str]:
        raw = self._call("get_job_status", handle.job_id)
        word = str(getattr(raw, "status", raw) or "").strip()
        message = str(getattr(raw, "message", "") or "")
        if word.lower() == "unknown" and "not found" in message.lower():
            raise JobNotFoundError("the TAO SDK platform does not know this job", key=handle.job_id,
                                   value=self.kind, expected="a job id the SDK's state store holds")
        return _STATES.get(word.lower(), JobState.UNKNOWN), message

    def wait(self, handle: JobHandle, timeout: float) -> JobStatus:
        return _util.poll_until_terminal(lambda: self.status(handle), timeout,
                                         first=0.02, cap=float(self._opts["poll_interval_s"]))

    def logs(self, handle: JobHandle, since: int = 0) -> str:
        text = self._call("get_job_logs", handle.job_id) or ""
        secrets = [os.environ[n] for n in handle.data.get("secret_env") or () if n in os.environ]
        return _util.redact(str(text), secrets)[max(0, since):]

    def cancel(self, handle: JobHandle) -> None:
        self._call("cancel_job", handle.job_id)  # False for a job already terminal: fine

    def list_artifacts(self, handle: JobHandle) -> list[str]:
        found = set(_util.list_artifacts(handle)) if handle.results_dir else set()
        if "list_results" in self._methods:
            found |= {str(p) for p in self._call("list_results", handle.job_id) or ()}
        elif "get_checkpoints" in self._methods:
            found |= {str(p) for p in self._call("get_checkpoints", handle.job_id) or ()
                      if not os.path.isabs(str(p)) and "://" not in str(p)}
        return sorted(found)

    def read_artifact(self, handle: JobHandle, path: str) -> bytes:
        try:
            return _util.read_artifact(handle, path)
        except PlatformError as exc:
            if "escapes" in str(exc) or "read_job_result_file" not in self._methods:
                raise
            try:
                text = self._call("read_job_result_file", handle.job_id, path)
            except PlatformError:
                raise exc from None
            if not text:
                raise
            return str(text).encode()

    def cleanup(self, handle: JobHandle) -> None:
        """Nothing to release: the SDK owns its job records and results."""

    # ------------------------------------------------------------- helpers
    def _call(self, method: str, *args: Any) -> Any:
        try:
            return getattr(self._sdk, method)(*args)
        except AutoMLError:
            raise
        except Exception as exc:
            raise PlatformError(f"TAO SDK {self.kind}.{method} failed "
                                f"({type(exc).__name__}: {exc})", key=str(args[0] if args else "")) from exc

    @staticmethod
    def _control(handle: JobHandle, what: str) -> Path | None:
        if not handle.results_dir or _util.is_uri(handle.results_dir):
            return None
        return (Path(_util.local_path(handle.results_dir)) / _util.CONTROL_DIR
                / f"tao_sdk-{_util.safe_name(handle.job_id, 60)}.{what}")

    def _control_write(self, handle: JobHandle, what: str, text: str) -> None:
        p = self._control(handle, what)
        if p is not None:
            p.parent.mkdir(parents=True, exist_ok=True)
            _util.write_atomic(p, text)

    def _control_exists(self, handle: JobHandle, what: str) -> bool:
        p = self._control(handle, what)
        return bool(p is not None and p.exists())

    # ------------------------------------------------ pickling (Ray workers)
    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        if isinstance(self._sdk, _RemoteSdk):
            remote = self._sdk
        else:
            if self._server is None:
                self._server = _SdkServer(self._sdk, self._methods)
            remote = _RemoteSdk(self._server.address, self._server.authkey, self._methods, self.kind)
        opts = {**self._extra, **{k: v for k, v in self._opts.items() if v != self.OPTIONS[k]}}
        return (TaoSdkBackend, (remote,), {"_preset": opts})

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._extra, self._opts = {}, dict(self.OPTIONS)
        for k, v in state.get("_preset", {}).items():
            (self._opts if k in self.OPTIONS else self._extra)[k] = v


def _json(data: Any) -> str:
    import json

    return json.dumps(data, default=str, sort_keys=True)


class _SdkServer:
    """Serves one SDK object's methods to trial workers over a Unix socket."""

    def __init__(self, sdk: Any, methods: tuple[str, ...]) -> None:
        from multiprocessing.connection import Listener

        self._sdk, self._methods = sdk, set(methods)
        self.authkey = os.urandom(32)
        folder = tempfile.mkdtemp(prefix="tao-sdk-")
        self.address = os.path.join(folder, "sock")
        self._listener = Listener(self.address, family="AF_UNIX", authkey=self.authkey)
        import atexit

        atexit.register(self._close, folder)
        threading.Thread(target=self._accept, name="tao-sdk-server", daemon=True).start()

    def _close(self, folder: str) -> None:
        self._closed = True
        try:
            self._listener.close()  # removes the socket file
            os.rmdir(folder)
        except OSError:
            pass

    def _accept(self) -> None:
        while True:
            try:
                conn = self._listener.accept()
            except Exception:  # noqa: BLE001 - a failed handshake must not stop the server
                if getattr(self, "_closed", False):
                    return
                continue
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: Any) -> None:
        with conn:
            while True:
                try:
                    method, args, kwargs = conn.recv()
                except (EOFError, OSError):
                    return
                try:
                    if method not in self._methods:
                        raise AttributeError(method)
                    reply = ("ok", getattr(self._sdk, method)(*args, **kwargs))
                except Exception as exc:  # noqa: BLE001 - sent back to the caller
                    reply = ("err", RuntimeError(f"{type(exc).__name__}: {exc}"))
                try:
                    conn.send(reply)
                except Exception as exc:  # noqa: BLE001 - an unpicklable result
                    conn.send(("err", RuntimeError(f"result not transferable: {exc}")))


class _RemoteSdk:
    """The SDK as a trial worker sees it: each call goes to the driver's object."""

    def __init__(self, address: str, authkey: bytes, methods: tuple[str, ...], kind: str) -> None:
        self._address, self._authkey, self._methods, self._tao_kind = address, authkey, methods, kind
        self._local = threading.local()

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return (_RemoteSdk, (self._address, self._authkey, self._methods, self._tao_kind))

    def _conn(self) -> Any:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            from multiprocessing.connection import Client

            try:
                conn = Client(self._address, family="AF_UNIX", authkey=self._authkey)
            except OSError as exc:
                raise PlatformError("cannot reach the driver's TAO SDK object", value=self._address,
                                    expected="trial workers on the driver's machine, while the run is alive") from exc
            self._local.conn = conn
        return conn

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_") or name not in self._methods:
            raise AttributeError(name)

        def call(*args: Any, **kwargs: Any) -> Any:
            conn = self._conn()
            try:
                conn.send((name, args, kwargs))
                status, value = conn.recv()
            except (EOFError, OSError) as exc:
                self._local.conn = None
                raise PlatformError("lost the connection to the driver's TAO SDK object", key=name,
                                    value=self._address) from exc
            if status == "err":
                raise value
            return value

        return call
