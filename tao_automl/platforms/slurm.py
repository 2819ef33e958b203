"""SLURM backend: ``sbatch``/``squeue``/``sacct``/``scontrol``/``scancel`` run
locally or over SSH (``ssh_host``).

Each job gets a control directory ``<results_dir>/.tao_automl/<name>-<id>/``
(or under ``log_dir``) holding the generated batch script, ``job.log`` (the
``--output`` file) and an ``exitcode`` file the script writes atomically.
The script enforces ``timeout_s`` with coreutils ``timeout`` (SLURM's own
``--time`` is a minute-granular backstop) and marks a timeout in
``timed_out``.

Status sources, in order: ``sacct`` (when accounting is enabled; probed once
per backend), ``squeue`` (while the job is queued or running, e.g. when sacct
lags), ``scontrol show job -o`` (finished jobs still held by the controller,
``MinJobAge``), and finally the exit-code file.  Secret values reach the job
through ``sbatch``'s exported environment (over SSH: through the SSH channel's
stdin), never through the script or a command line.
"""

from __future__ import annotations

import math
import os
import shlex
import subprocess
import time
from pathlib import Path, PurePosixPath

from tao_automl.errors import (
    JobNotFoundError,
    PlatformError,
    PlatformUnavailableError,
    SettingsError,
)
from tao_automl.platforms import _util
from tao_automl.platforms import paths as _paths
from tao_automl.platforms._script import job_body
from tao_automl.platforms._slurm_state import (
    map_state,
    parse_exit_code,
    parse_sacct,
    parse_scontrol,
    sbatch_error,
)
from tao_automl.platforms.base import (
    FailureReason,
    JobHandle,
    JobRequest,
    JobState,
    JobStatus,
    PathCheck,
)
from tao_automl.platforms.classify import classify_failure

__all__ = ["SlurmBackend"]

#: the batch script line naming the job's secret env variables (names, never values)
_SECRET_NAMES = "# tao_automl secret_env: "


class SlurmBackend:
    """Submit jobs to SLURM with sbatch.

    Keyword options:
        ssh_host: run every SLURM command (and file access) as ``ssh HOST ...``.
        partition, account, qos: passed to sbatch when set.
        time_limit: default ``--time`` (minutes or SLURM time string) for jobs
            without ``timeout_s``.
        gpus_per_node / gpu_count: GPUs per node (request.gpu_count wins).
        nodes: node count default (request.num_nodes > 1 wins).
        extra_sbatch_args: list of extra sbatch arguments.
        log_dir: control/log directory when results_dir is remote or unset.
        grace_period_s: seconds between SIGTERM and SIGKILL at the time limit (10).
        poll_interval_s: longest pause between status polls in wait() (1.0).
        status_source: "auto" (sacct if accounting works), "sacct" or "scontrol".
        command_timeout_s: limit for each SLURM CLI call (60).
        path_check: where dataset paths are checked before launch: "auto"
            (over ``ssh_host`` when set, else a short ``srun`` job), "job"
            (always the ``srun`` job, in the configured partition/account/qos),
            "login" (the submit host: ``ssh_host``, else this machine) or
            "off" (unverified).
        path_check_timeout_s: how long the check job may wait for a node (30).
    """

    name = "slurm"
    OPTIONS = {"ssh_host": None, "partition": None, "account": None, "qos": None,
               "time_limit": None, "gpus_per_node": None, "gpu_count": 0, "nodes": None,
               "extra_sbatch_args": (), "log_dir": None, "grace_period_s": 10.0,
               "poll_interval_s": 1.0, "status_source": "auto", "command_timeout_s": 60.0,
               "path_check": "auto", "path_check_timeout_s": 30.0}

    def __init__(self, **kwargs) -> None:
        self._opts = _util.take_options(self.name, kwargs, self.OPTIONS)
        o = self._opts
        if o["status_source"] not in ("auto", "sacct", "scontrol"):
            raise SettingsError("invalid slurm status_source", key="status_source", value=o["status_source"],
                                expected="'auto', 'sacct' or 'scontrol'")
        if o["path_check"] not in ("auto", "job", "login", "off"):
            raise SettingsError("invalid slurm path_check", key="path_check", value=o["path_check"],
                                expected="'auto', 'job', 'login' or 'off'")
        self.ssh_host = o["ssh_host"]
        self._sacct_ok: bool | None = {"auto": None, "sacct": True, "scontrol": False}[
            o["status_source"]]

    def configure(self, **kwargs) -> None:
        """Update options after construction (same names as the constructor)."""
        self.__init__(**{**self._opts, **kwargs})

    # -- running commands -----------------------------------------------------------
    def _run(self, argv: list[str], *, stdin: str | None = None, env: dict | None = None,
             check_missing: bool = True, timeout: float | None = None) -> subprocess.CompletedProcess:
        if self.ssh_host:
            remote = " ".join(shlex.quote(a) for a in argv) if stdin is None or argv[0] != "bash" \
                else "bash -s"
            argv = ["ssh", "-o", "BatchMode=yes", str(self.ssh_host), remote]
        try:
            return subprocess.run(argv, input=stdin, capture_output=True, text=True, env=env,
                                  timeout=float(timeout or self._opts["command_timeout_s"]))
        except FileNotFoundError as exc:
            raise PlatformUnavailableError("SLURM command not found", key=argv[0],
                                           value=os.environ.get("PATH", ""),
                                           expected=f"'{argv[0]}' on PATH (install slurm-client or set ssh_host)") from exc
        except subprocess.TimeoutExpired as exc:
            raise PlatformUnavailableError("SLURM command timed out", key=argv[0],
                                           value=timeout or self._opts["command_timeout_s"],
                                           expected="a responsive controller") from exc

    def is_available(self) -> bool:
        """True when the controller answers ``sinfo``."""
        try:
            return self._run(["sinfo", "-h", "-o", "%P"]).returncode == 0
        except PlatformUnavailableError:
            return False

    def _write(self, path: str, text: str, mode: int = 0o644) -> None:
        if self.ssh_host:
            cmd = (f"mkdir -p {shlex.quote(str(PurePosixPath(path).parent))} && "
                   f"cat > {shlex.quote(path)} && chmod {mode:o} {shlex.quote(path)}")
            res = subprocess.run(["ssh", "-o", "BatchMode=yes", str(self.ssh_host), cmd],
                                 input=text, capture_output=True, text=True)
            if res.returncode:
                raise PlatformError(f"cannot write over ssh: {res.stderr.strip()}", file=path)
            return
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        _util.write_atomic(Path(path), text, mode)

    def _read(self, path: str) -> str | None:
        if self.ssh_host:
            res = self._run(["cat", path])
            return res.stdout if res.returncode == 0 else None
        try:
            return Path(path).read_text(errors="replace")
        except OSError:
            return None

    # -- path checks ---------------------------------------------------------------------
    def check_paths(self, paths: list[str]) -> dict[str, PathCheck]:
        """Readability where the jobs run (see the ``path_check`` option).

        The job variant is one ``srun`` step (1 task, 1-minute limit,
        ``--immediate`` = ``path_check_timeout_s``) running ``test -e``/``-r``
        on a compute node, its answers streamed back through srun's stdout (no
        shared file needed).  No node within the limit, or a failing srun,
        gives ``unverified`` with the reason, never a blocker.
        """
        paths = list(dict.fromkeys(paths))
        mode = self._opts["path_check"]
        if mode == "auto":
            mode = "login" if self.ssh_host else "job"
        if mode == "off" or not paths:
            return _paths.unverified(paths, "not checked (slurm path_check='off')")
        if mode == "login" and not self.ssh_host:
            return _paths.check_local_paths(paths, where=f"the SLURM submit host {_paths.this_host()}")
        wait = max(1, int(math.ceil(float(self._opts["path_check_timeout_s"]))))
        script = ["bash", "-c", _paths.SHELL_CHECK, "tao-automl-path-check", *paths]
        if mode == "login":
            argv, where, what = script, f"the SLURM login host {self.ssh_host} (ssh)", "ssh path check"
        else:
            argv = ["srun", "--job-name=tao-automl-path-check", "--nodes=1", "--ntasks=1", "--time=1",
                    f"--immediate={wait}", "--quiet"]
            argv += [f"--{key}={self._opts[key]}" for key in ("partition", "account", "qos") if self._opts[key]]
            argv += script
            where, what = "SLURM node {host} (srun)", "srun path check"
        try:
            res = self._run(argv, timeout=wait + 30.0)
        except PlatformUnavailableError as exc:
            return _paths.unverified(paths, f"the {what} could not run ({exc})")
        answers = _paths.parse_shell_check(paths, res.stdout, where=where)
        if len(answers) < len(paths):
            tail = (res.stderr.strip().splitlines() or [""])[-1][:300]
            answers.update(_paths.unverified(
                [p for p in paths if p not in answers],
                f"the {what} gave no answer (exit code {res.returncode}{': ' + tail if tail else ''})"))
        return answers

    # -- submit ------------------------------------------------------------------------
    def _control_dir(self, request: JobRequest) -> str:
        if self._opts["log_dir"]:
            base = str(self._opts["log_dir"])
        elif request.results_dir and not _util.is_uri(request.results_dir):
            base = str(PurePosixPath(_util.local_path(request.results_dir)) / _util.CONTROL_DIR)
        else:
            import tempfile

            base = str(Path(tempfile.gettempdir()) / "tao_automl-jobs")
        return str(PurePosixPath(os.path.abspath(base) if not self.ssh_host else base)
                   / _util.unique_name(request.name))

    def _time_minutes(self, request: JobRequest) -> str | None:
        if request.timeout_s:
            grace = float(self._opts["grace_period_s"])
            return str(max(1, math.ceil((request.timeout_s + grace) / 60.0) + 1))
        limit = self._opts["time_limit"]
        return None if limit in (None, "") else str(limit)

    def batch_script(self, request: JobRequest, ctl: str) -> str:
        """The batch script text for ``request`` (no secret values in it)."""
        o = self._opts
        gpus = request.gpu_count or o["gpus_per_node"] or o["gpu_count"] or 0
        nodes = request.num_nodes if request.num_nodes > 1 else (o["nodes"] or 1)
        cwd = request.cwd or (_util.local_path(request.results_dir)
                              if request.results_dir and not _util.is_uri(request.results_dir)
                              else ctl)
        directives = [f"--job-name={_util.safe_name(request.name, 64)}",
                      f"--output={ctl}/job.log", "--open-mode=append", f"--chdir={cwd}",
                      f"--nodes={nodes}"]
        for key in ("partition", "account", "qos"):
            if o[key]:
                directives.append(f"--{key}={o[key]}")
        if (minutes := self._time_minutes(request)) is not None:
            directives.append(f"--time={minutes}")
        if gpus:
            directives.append(f"--gpus-per-node={int(gpus)}")
        lines = ["#!/bin/bash", *(f"#SBATCH {d}" for d in directives),
                 "# generated by tao_automl; secret values come from the environment only",
                 # names only: find() gives them back to a recovered handle, whose logs stay masked
                 f"{_SECRET_NAMES}{','.join(request.secret_env)}"]
        lines += job_body(request, ctl, float(o["grace_period_s"]))
        return "\n".join(lines) + "\n"

    def submit(self, request: JobRequest) -> JobHandle:
        """Write the batch script and ``sbatch --parsable`` it."""
        _util.check_request(request, self.name)  # names reach scripts/specs: refuse before creating anything
        secrets = _util.secret_values(request)
        ctl = self._control_dir(request)
        script = f"{ctl}/job.sbatch"
        self._write(script, self.batch_script(request, ctl), 0o755)
        argv = ["sbatch", "--parsable", *map(str, self._opts["extra_sbatch_args"] or ()), script]
        if self.ssh_host and secrets:
            feed = "".join(f"export {k}={shlex.quote(v)}\n" for k, v in secrets.items())
            res = self._run(["bash", "-s"], stdin=feed + "exec " + shlex.join(argv) + "\n")
        else:
            res = self._run(argv, env={**os.environ, **secrets})
        if res.returncode != 0:
            raise sbatch_error(res.stderr, res.returncode, self._opts, ssh=bool(self.ssh_host))
        job_id = res.stdout.strip().splitlines()[-1].split(";")[0].strip() if res.stdout.strip() else ""
        if not job_id.isdigit():
            raise PlatformError("unexpected sbatch --parsable output", key="sbatch", value=res.stdout,
                                expected="a numeric job id")
        data = {"control_dir": ctl, "log_path": f"{ctl}/job.log", "script": script,
                "ssh_host": self.ssh_host, "secret_env": list(request.secret_env),
                "timeout_s": request.timeout_s}
        return JobHandle(backend=self.name, job_id=job_id, name=request.name,
                         results_dir=request.results_dir, data=data)

    def find(self, name: str, results_dir: str | None = None) -> list[JobHandle]:
        """Pending or running jobs named ``name`` (oldest first), from ``squeue``.

        For a driver killed after ``sbatch`` accepted the job but before the
        handle reached the ledger (:mod:`tao_automl.store.intents`).  Jobs
        that already left the queue are not found.
        """
        res = self._run(["squeue", "-h", "--name", _util.safe_name(name, 64), "-o", "%i|%o"])
        if res.returncode != 0:
            raise PlatformError("squeue failed", key="squeue --name", value=name,
                                expected="a reachable SLURM controller", hint=res.stderr.strip()[:300])
        out = []
        for line in res.stdout.splitlines():
            job_id, _, script = line.strip().partition("|")
            if not job_id.isdigit():
                continue
            ctl = str(PurePosixPath(script).parent) if script.endswith("job.sbatch") else None
            data = {"control_dir": ctl, "log_path": f"{ctl}/job.log" if ctl else None, "script": script or None,
                    "ssh_host": self.ssh_host, "secret_env": self._secret_names(script), "timeout_s": None,
                    "recovered": True}
            out.append(JobHandle(backend=self.name, job_id=job_id, name=name, results_dir=results_dir, data=data))
        return sorted(out, key=lambda h: int(h.job_id))

    def _secret_names(self, script: str | None) -> list[str]:
        """The secret env names the batch script records (``# tao_automl secret_env: A,B``)."""
        text = (self._read(script) or "") if script else ""
        for line in text.splitlines():
            if line.startswith(_SECRET_NAMES):
                return [n for n in line[len(_SECRET_NAMES):].split(",") if n]
        return []

    # -- status ---------------------------------------------------------------------------
    def _query(self, job_id: str) -> tuple[str, dict[str, str]]:
        """(source, fields) with State/ExitCode/Reason, or ("", {}) if nobody knows."""
        if self._sacct_ok is not False:
            res = self._run(["sacct", "-j", job_id, "-n", "-P", "-X",
                             "-o", "JobID,State,ExitCode,Reason"])
            if res.returncode != 0 or "accounting storage is disabled" in res.stderr.lower():
                if self._sacct_ok is None:
                    self._sacct_ok = False
            else:
                self._sacct_ok = True
                if row := parse_sacct(res.stdout, job_id):
                    return "sacct", row
        res = self._run(["squeue", "-h", "-j", job_id, "-o", "%i|%T|%r"])
        if res.returncode == 0:
            for line in res.stdout.splitlines():
                parts = line.split("|")
                if parts[0].strip() == job_id and len(parts) == 3:
                    state = parts[1].strip()
                    if map_state(state)[0] in (JobState.PENDING, JobState.RUNNING):
                        return "squeue", {"State": state, "Reason": parts[2], "ExitCode": ""}
        res = self._run(["scontrol", "show", "job", "-o", job_id])
        if res.returncode == 0 and res.stdout.strip():
            fields = parse_scontrol(res.stdout)
            if fields.get("JobId") == job_id:
                return "scontrol", {"State": fields.get("JobState", ""),
                                    "ExitCode": fields.get("ExitCode", ""),
                                    "Reason": fields.get("Reason", "")}
        return "", {}

    @staticmethod
    def _ctl(handle: JobHandle) -> str:
        try:
            return handle.data["control_dir"]
        except (KeyError, TypeError):
            raise JobNotFoundError("not a slurm job handle", key=handle.job_id, value=handle.data,
                                   expected="data.control_dir") from None

    def status(self, handle: JobHandle) -> JobStatus:
        """Scheduler state, refined by the job's exit-code and marker files."""
        ctl = self._ctl(handle)
        source, row = self._query(handle.job_id)
        exit_text = self._read(f"{ctl}/exitcode")
        file_code = int(exit_text.strip()) if exit_text and exit_text.strip().isdigit() else None
        timed_out = self._read(f"{ctl}/timed_out") is not None
        if not row:
            if file_code is None:
                return JobStatus(state=JobState.UNKNOWN, message=f"SLURM job {handle.job_id} is "
                                 "unknown to sacct, squeue and scontrol and left no exit code")
            state, fixed = (JobState.SUCCEEDED if file_code == 0 else JobState.FAILED), None
            source = "exitcode file"
        else:
            state, fixed = map_state(row["State"])
        code = file_code if file_code is not None else parse_exit_code(row.get("ExitCode"))
        where = f"SLURM {row.get('State', '?')} ({source})"
        if state in (JobState.PENDING, JobState.RUNNING, JobState.UNKNOWN):
            reason = row.get("Reason", "")
            return JobStatus(state=state, message=f"{where}" + (f", reason {reason}"
                                                                if reason not in ("", "None") else ""))
        if state is JobState.SUCCEEDED and code in (0, None):
            return JobStatus(state=state, exit_code=0, message=where)
        if state is JobState.CANCELED:
            return JobStatus(state=state, reason=FailureReason.CANCELED, exit_code=code,
                             message=where)
        reason, msg = classify_failure(code, self.logs(handle), timed_out=timed_out,
                                       oom_killed=fixed is FailureReason.OOM,
                                       platform_reason=None if fixed in (None, FailureReason.OOM)
                                       else fixed, platform_message=f"{where}, exit code {code}")
        return JobStatus(state=JobState.FAILED, reason=reason, exit_code=code,
                         message=f"{where}: {msg}")

    def wait(self, handle: JobHandle, timeout: float) -> JobStatus:
        """Poll with a short, growing backoff (capped by ``poll_interval_s``)."""
        return _util.poll_until_terminal(lambda: self.status(handle), timeout, first=0.05,
                                         cap=float(self._opts["poll_interval_s"]))

    def logs(self, handle: JobHandle, since: int = 0) -> str:
        """Text of the ``--output`` file from offset ``since``; secret values masked."""
        text = self._read(handle.data.get("log_path") or f"{self._ctl(handle)}/job.log") or ""
        values = [os.environ.get(n, "") for n in handle.data.get("secret_env", ())]
        return _util.redact(text[max(0, since):], values)

    def cancel(self, handle: JobHandle, wait_s: float | None = None) -> None:
        """``scancel`` (SIGTERM, SIGKILL after KillWait), then wait until the job
        has left the queue.  Idempotent."""
        if self.status(handle).terminal:
            return
        self._write(f"{self._ctl(handle)}/canceled", f"{time.time()}\n")
        res = self._run(["scancel", handle.job_id])
        if res.returncode != 0 and "already completing or completed" not in res.stderr \
                and "Invalid job id" not in res.stderr:
            raise PlatformError(f"scancel failed: {res.stderr.strip()}", key=handle.job_id)
        limit = wait_s if wait_s is not None else float(self._opts["grace_period_s"]) + 30.0
        deadline = time.monotonic() + limit
        self.wait(handle, limit)
        # accounting says CANCELLED while squeue may still list the job COMPLETING (its
        # processes being killed on the node): wait until it has left the queue
        delay = 0.05
        while self._in_queue(handle.job_id) and time.monotonic() < deadline:
            time.sleep(delay)
            delay = min(delay * 2, float(self._opts["poll_interval_s"]))

    def _in_queue(self, job_id: str) -> bool:
        """Whether ``squeue`` still lists the job (in any state, COMPLETING included)."""
        res = self._run(["squeue", "-h", "-j", job_id, "-o", "%i"])
        return res.returncode == 0 and job_id in {line.strip() for line in res.stdout.splitlines()}

    def list_artifacts(self, handle: JobHandle) -> list[str]:
        if self.ssh_host and handle.results_dir and not _util.is_uri(handle.results_dir):
            res = self._run(["find", handle.results_dir, "-type", "f", "-printf", "%P\\n"])
            return sorted(p for p in res.stdout.splitlines()
                          if p and p.split("/")[0] != _util.CONTROL_DIR)
        return _util.list_artifacts(handle)

    def read_artifact(self, handle: JobHandle, path: str) -> bytes:
        if self.ssh_host and handle.results_dir and not _util.is_uri(handle.results_dir):
            text = self._read(f"{handle.results_dir.rstrip('/')}/{path}")
            if text is None:
                raise PlatformError("artifact not found on the SLURM host", key=path, file=handle.results_dir)
            return text.encode()
        return _util.read_artifact(handle, path)

    def cleanup(self, handle: JobHandle) -> None:
        """Nothing to release: SLURM frees the allocation when the job ends."""
