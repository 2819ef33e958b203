"""Brev backend: runs each job on an existing Brev instance through the
``brev`` CLI (``brev exec INSTANCE COMMAND``; ``transport="ssh"`` uses the
``ssh INSTANCE`` host alias that ``brev`` manages instead).

The job is a detached ``setsid nohup bash job.sh`` under
``<workdir>/<name>-<id>/`` on the instance; the script (shared with the slurm
backend) writes ``exitcode``/``timed_out`` there.  Secrets are *not* sent by
this backend: configure them as Brev secrets (``brev secret create NAME``),
which Brev injects into the instance environment.  results_dir is a path on
the instance (read with ``cat``/``find``) or an fsspec URI (read directly).
"""

from __future__ import annotations

import base64
import shlex
import subprocess

from tao_automl.errors import (
    JobNotFoundError,
    PlatformError,
    PlatformUnavailableError,
    SettingsError,
    SubmitError,
    TransientSubmitError,
)
from tao_automl.platforms import _util
from tao_automl.platforms._script import job_body
from tao_automl.platforms.base import (
    FailureReason,
    JobHandle,
    JobRequest,
    JobState,
    JobStatus,
    PathCheck,
)
from tao_automl.platforms.classify import classify_failure
from tao_automl.platforms.paths import unverified

__all__ = ["BrevBackend"]


class BrevBackend:
    """Run jobs on a Brev instance.

    Keyword options:
        instance: Brev instance name (required at submit).
        transport: "exec" (``brev exec``) or "ssh" (``ssh INSTANCE``).
        brev_bin: the brev executable ("brev").
        workdir: control directory root on the instance ("$HOME/.tao_automl/jobs").
        gpu_count: GPUs per job (sets CUDA_VISIBLE_DEVICES=0..n-1 when no gpu_ids).
        grace_period_s: SIGTERM -> SIGKILL delay on cancel/timeout (10).
        command_timeout_s: limit for each CLI call (120).
    """

    name = "brev"
    OPTIONS = {"instance": None, "transport": "exec", "brev_bin": "brev",
               "workdir": "$HOME/.tao_automl/jobs", "gpu_count": 0, "grace_period_s": 10.0,
               "command_timeout_s": 120.0}

    def __init__(self, **kwargs) -> None:
        self._opts = _util.take_options(self.name, kwargs, self.OPTIONS)
        if self._opts["transport"] not in ("exec", "ssh"):
            raise SettingsError("invalid brev transport", key="transport", value=self._opts["transport"],
                                expected="'exec' or 'ssh'")

    def configure(self, **kwargs) -> None:
        """Update options after construction (same names as the constructor)."""
        self.__init__(**{**self._opts, **kwargs})

    def _remote(self, instance: str, script: str) -> subprocess.CompletedProcess:
        o = self._opts
        argv = ([o["brev_bin"], "exec", instance, script] if o["transport"] == "exec"
                else ["ssh", "-o", "BatchMode=yes", instance, script])
        try:
            return subprocess.run(argv, capture_output=True, text=True,
                                  timeout=float(o["command_timeout_s"]))
        except FileNotFoundError as exc:
            raise PlatformUnavailableError("brev CLI not found", key="brev_bin", value=argv[0],
                                           expected="the brev CLI on PATH, logged in (brev login)") from exc
        except subprocess.TimeoutExpired as exc:
            raise PlatformUnavailableError("brev command timed out", key="instance", value=instance) from exc

    def check_paths(self, paths: list[str]) -> dict[str, PathCheck]:
        """Not checked before launch: ``unverified`` with the reason."""
        inst = self._opts["instance"] or "<instance not set>"
        return unverified(paths, f"the brev backend does not check paths on instance {inst} before launch; "
                                 "make sure it exists there", where=f"brev instance {inst}")

    def _inst(self, handle: JobHandle) -> str:
        try:
            return handle.data["instance"]
        except (KeyError, TypeError):
            raise JobNotFoundError("not a brev job handle", key=handle.job_id, value=handle.data,
                                   expected="data.instance") from None

    def submit(self, request: JobRequest) -> JobHandle:
        """Write the job script on the instance and start it detached."""
        _util.check_request(request, self.name)  # names reach scripts/specs: refuse before creating anything
        instance = self._opts["instance"]
        if not instance:
            raise SubmitError("no Brev instance configured", key="instance", value=None,
                              expected="get_backend('brev', instance='my-gpu-box')")
        if not request.gpu_ids and (n := request.gpu_count or self._opts["gpu_count"]):
            import attrs

            request = attrs.evolve(request, gpu_ids=tuple(range(int(n))))
        ctl = f"{self._opts['workdir'].rstrip('/')}/{_util.unique_name(request.name)}"
        body = job_body(request, ctl, float(self._opts["grace_period_s"]))
        if request.cwd or (request.results_dir and not _util.is_uri(request.results_dir)):
            cwd = request.cwd or request.results_dir
            body.insert(1, f"mkdir -p {shlex.quote(cwd)} && cd {shlex.quote(cwd)} || exit 1")
        text = "#!/bin/bash\n" + "\n".join(body) + "\n"
        encoded = base64.b64encode(text.encode()).decode()
        script = (f'ctl="{ctl}"; mkdir -p "$ctl" && echo {encoded} | base64 -d > "$ctl/job.sh" '
                  f'|| exit 1; setsid nohup bash "$ctl/job.sh" > "$ctl/job.log" 2>&1 < /dev/null & '
                  f'echo "pid=$! ctl=$ctl"')
        res = self._remote(instance, script)
        out = dict(p.split("=", 1) for p in res.stdout.split() if "=" in p)
        if res.returncode != 0 or not out.get("pid", "").isdigit():
            err = (res.stderr or res.stdout).strip()
            cls = TransientSubmitError if res.returncode == 255 or "timed out" in err.lower() \
                else SubmitError
            raise cls(f"brev could not start the job: {err}", key="instance", value=instance)
        return JobHandle(backend=self.name, job_id=f"{instance}:{out['pid']}", name=request.name,
                         results_dir=request.results_dir,
                         data={"instance": instance, "pid": int(out["pid"]),
                               "control_dir": out.get("ctl", ctl),
                               "secret_env": list(request.secret_env)})

    def _probe(self, handle: JobHandle) -> dict[str, str]:
        ctl, pid = shlex.quote(handle.data["control_dir"]), int(handle.data["pid"])
        res = self._remote(self._inst(handle),
                           f"cd {ctl} 2>/dev/null || {{ echo missing=1; exit 0; }}; "
                           f"echo exit=$(cat exitcode 2>/dev/null); "
                           f"kill -0 {pid} 2>/dev/null && echo alive=1; "
                           f"test -f timed_out && echo timed_out=1; "
                           f"test -f canceled && echo canceled=1; true")
        if res.returncode != 0:
            raise PlatformError(f"brev status probe failed: {res.stderr.strip()}", key=handle.job_id)
        return dict(line.split("=", 1) for line in res.stdout.splitlines() if "=" in line)

    def status(self, handle: JobHandle) -> JobStatus:
        p = self._probe(handle)
        if p.get("missing"):
            raise JobNotFoundError("job directory missing on the instance", file=handle.data["control_dir"],
                                   key=handle.job_id)
        code = int(p["exit"]) if p.get("exit", "").isdigit() else None
        if code is None and p.get("alive"):
            return JobStatus(state=JobState.RUNNING)
        if code == 0:
            return JobStatus(state=JobState.SUCCEEDED, exit_code=0)
        if p.get("canceled"):
            return JobStatus(state=JobState.CANCELED, reason=FailureReason.CANCELED, exit_code=code)
        if code is None and not p.get("timed_out"):
            return JobStatus(state=JobState.FAILED, reason=FailureReason.INFRASTRUCTURE,
                             message="job ended without an exit code (instance restarted?)")
        reason, msg = classify_failure(code, self.logs(handle), timed_out=bool(p.get("timed_out")))
        return JobStatus(state=JobState.FAILED, reason=reason, exit_code=code, message=msg)

    def wait(self, handle: JobHandle, timeout: float) -> JobStatus:
        """Poll with a growing backoff (0.2 s .. 5 s): each poll is a remote call."""
        return _util.poll_until_terminal(lambda: self.status(handle), timeout, first=0.2, cap=5.0)

    def logs(self, handle: JobHandle, since: int = 0) -> str:
        import os

        res = self._remote(self._inst(handle),
                           f"cat {shlex.quote(handle.data['control_dir'])}/job.log 2>/dev/null; true")
        values = [os.environ.get(n, "") for n in handle.data.get("secret_env", ())]
        return _util.redact(res.stdout[max(0, since):], values)

    def cancel(self, handle: JobHandle) -> None:
        """SIGTERM to the job's process group, SIGKILL after the grace period."""
        if self.status(handle).terminal:
            return
        pid, ctl = int(handle.data["pid"]), shlex.quote(handle.data["control_dir"])
        ticks = max(1, int(float(self._opts["grace_period_s"]) * 10))
        self._remote(self._inst(handle),
                     f"touch {ctl}/canceled; kill -TERM -- -{pid} 2>/dev/null; "
                     f"for i in $(seq {ticks}); do kill -0 -- -{pid} 2>/dev/null || exit 0; "
                     f"sleep 0.1; done; kill -KILL -- -{pid} 2>/dev/null; true")

    def list_artifacts(self, handle: JobHandle) -> list[str]:
        if not handle.results_dir or _util.is_uri(handle.results_dir):
            return _util.list_artifacts(handle)
        res = self._remote(self._inst(handle), f"find {shlex.quote(handle.results_dir)} "
                                               "-type f -printf '%P\\n' 2>/dev/null; true")
        return sorted(p for p in res.stdout.splitlines()
                      if p and p.split("/")[0] != _util.CONTROL_DIR)

    def read_artifact(self, handle: JobHandle, path: str) -> bytes:
        if not handle.results_dir or _util.is_uri(handle.results_dir):
            return _util.read_artifact(handle, path)
        rel = _util._check_rel(handle, path)
        full = f"{handle.results_dir.rstrip('/')}/{rel}"
        res = self._remote(self._inst(handle), f"base64 < {shlex.quote(full)}")
        if res.returncode != 0:
            raise PlatformError("artifact not found on the instance", file=full, key=handle.job_id,
                                value=path)
        return base64.b64decode(res.stdout)

    def cleanup(self, handle: JobHandle) -> None:
        """Nothing to release: the instance stays up (stop it with ``brev stop``)."""
