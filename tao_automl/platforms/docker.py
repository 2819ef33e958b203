"""Docker backend (docker SDK, imported lazily): one detached container per job.

results_dir (a local path) is bind-mounted at the same path, the spec file's
directory read-only; GPUs through ``device_requests``.  State comes from
``container.reload()`` and ``attrs["State"]`` (``OOMKilled``, ``ExitCode``).
The time limit is enforced by the backend on status()/wait() (stop, then
FAILED/TIMEOUT).  Note: Docker keeps a container's environment in its
configuration (visible to ``docker inspect``), so secret values live there
while the container exists; cleanup() removes it.  Handles never hold them.
"""

from __future__ import annotations

import os
import posixpath
import time
from pathlib import Path

from tao_automl.errors import (
    JobNotFoundError,
    PlatformError,
    PlatformUnavailableError,
    SubmitError,
    describe,
)
from tao_automl.platforms import _util
from tao_automl.platforms.base import (
    FailureReason,
    JobHandle,
    JobRequest,
    JobState,
    JobStatus,
    PathCheck,
    PathState,
)
from tao_automl.platforms.classify import classify_failure
from tao_automl.platforms.paths import check_local_paths, under_dir

__all__ = ["DockerBackend"]


class DockerBackend:
    """Run jobs as Docker containers.

    Keyword options:
        client: a ``docker.DockerClient`` (default ``docker.from_env()``, or
            ``DockerClient(base_url=...)``).
        base_url: daemon URL when no client is given.
        image: default image when the request has none.
        gpu_count: default GPUs per job; ``-1`` = all.
        mounts: extra ``"host:container[:ro]"`` bind mounts.  Dataset paths (as
            the container sees them) must be under one; preflight checks the
            host side (:meth:`check_paths`).
        network, shm_size, user, runtime, ipc_mode: passed to ``containers.run``.
        grace_period_s: stop timeout before SIGKILL (10).
    """

    name = "docker"
    OPTIONS = {"client": None, "base_url": None, "image": None, "gpu_count": 0, "mounts": (),
               "network": None, "shm_size": None, "user": None, "runtime": None,
               "ipc_mode": None, "grace_period_s": 10.0}

    def __init__(self, **kwargs) -> None:
        self._opts = _util.take_options(self.name, kwargs, self.OPTIONS)
        self._client = self._opts["client"]
        self._canceled: set[str] = set()
        self._timed_out: set[str] = set()

    def configure(self, **kwargs) -> None:
        """Update options after construction (same names as the constructor)."""
        self.__init__(**{**self._opts, **kwargs})

    # -- client -------------------------------------------------------------------
    def client(self):
        if self._client is None:
            try:
                import docker
            except ImportError as exc:
                raise PlatformUnavailableError("the docker package is not installed", key="docker",
                                               expected="pip install 'tao-automl[docker]'") from exc
            try:
                self._client = (docker.DockerClient(base_url=self._opts["base_url"])
                                if self._opts["base_url"] else docker.from_env())
            except docker.errors.DockerException as exc:
                raise PlatformUnavailableError(f"cannot reach the Docker daemon ({exc})", key="base_url",
                                               value=self._opts["base_url"] or os.environ.get("DOCKER_HOST"),
                                               expected="a running dockerd") from exc
        return self._client

    @staticmethod
    def _errors():
        import docker.errors

        return docker.errors

    def _container(self, handle: JobHandle):
        errors = self._errors()
        try:
            return self.client().containers.get(handle.job_id)
        except errors.NotFound as exc:
            raise JobNotFoundError("container not found", key=handle.job_id, expected="an existing container") from exc
        except errors.APIError as exc:
            raise PlatformError(f"docker API error ({exc})", key=handle.job_id) from exc
        except errors.DockerException as exc:
            raise PlatformUnavailableError(f"Docker unreachable ({exc})", key=handle.job_id) from exc

    # -- path checks ----------------------------------------------------------------
    def _mounts(self) -> list[tuple[str, str, str]]:
        """(host, container, mode) of the ``mounts`` option."""
        out = []
        for m in self._opts["mounts"] or ():
            host, _, rest = str(m).partition(":")
            bind, _, mode = rest.partition(":")
            out.append((host, bind or host, mode or "rw"))
        return out

    def _daemon_url(self) -> str:
        if self._opts["base_url"]:
            return str(self._opts["base_url"])
        if self._client is not None:
            return str(getattr(getattr(self._client, "api", None), "base_url", "") or "")
        return os.environ.get("DOCKER_HOST", "")

    def check_paths(self, paths: list[str]) -> dict[str, PathCheck]:
        """A dataset path is what the container sees: it must be under one of
        the ``mounts`` (container side), and is then checked on the host side
        of that mount -- on this machine, unless the daemon is remote
        (``unverified``).  Paths baked into the image are not seen here."""
        url = self._daemon_url()
        remote = url.split("://", 1)[0] in ("tcp", "http", "https", "ssh") if "://" in url else False
        mounts = sorted(self._mounts(), key=lambda m: len(m[1]), reverse=True)
        out: dict[str, PathCheck] = {}
        for p in paths:
            hit = next((m for m in mounts if under_dir(p, m[1])), None)
            if hit is None:
                shown = [f"{h}:{c}" for h, c, _ in self._mounts()] or "none"
                out[p] = PathCheck(state=PathState.UNREADABLE, where="docker container",
                                   reason=f"not under any of the container's mounts (mounts: {shown}); "
                                          "add mounts=['HOST_DIR:CONTAINER_DIR:ro'] so the container sees it")
                continue
            host, bind, _ = hit
            rel = posixpath.relpath(posixpath.normpath(p), posixpath.normpath(bind))
            host_path = host if rel == "." else posixpath.join(host, rel)
            mount = f"mount {host}:{bind}"
            if remote:
                out[p] = PathCheck(state=PathState.UNVERIFIED, where=f"Docker daemon {url}",
                                   reason=f"the Docker daemon at {url} is remote: the host side {host_path!r} "
                                          f"of {mount} cannot be checked from here")
                continue
            ans = check_local_paths([host_path], where="the Docker host (this machine)")[host_path]
            out[p] = PathCheck(state=ans.state, where=f"{ans.where}, {mount}",
                               reason=f"host side {host_path!r} of {mount}: {ans.reason}" if ans.reason else "")
        return out

    # -- submit -------------------------------------------------------------------
    def _run_kwargs(self, request: JobRequest, secrets: dict[str, str]) -> dict:
        o = self._opts
        volumes: dict[str, dict] = {}
        if request.results_dir and not _util.is_uri(request.results_dir):
            rd = os.path.abspath(_util.local_path(request.results_dir))
            Path(rd).mkdir(parents=True, exist_ok=True)
            volumes[rd] = {"bind": rd, "mode": "rw"}
        if request.spec_path and not _util.is_uri(request.spec_path):
            sd = os.path.dirname(os.path.abspath(request.spec_path))
            volumes.setdefault(sd, {"bind": sd, "mode": "ro"})
        for m in o["mounts"] or ():
            host, _, rest = str(m).partition(":")
            bind, _, mode = rest.partition(":")
            volumes[host] = {"bind": bind or host, "mode": mode or "rw"}
        kw: dict = {
            "command": ["bash", "-c", request.command] if request.command is not None
            else list(request.argv or ()),
            "detach": True,
            "environment": {**request.env, **secrets},
            "volumes": volumes,
            # the job's name and what a lookup by name (find) needs to watch it again;
            # secret env *names* only, never values
            "labels": {**request.labels, "tao_automl.job": request.name,
                       "tao_automl.secret_env": ",".join(request.secret_env),
                       "tao_automl.timeout_s": "" if request.timeout_s is None else repr(float(request.timeout_s))},
            "name": _util.unique_name(request.name),
        }
        if request.cwd or volumes:
            kw["working_dir"] = request.cwd or next(iter(volumes))
        gpus = request.gpu_count or o["gpu_count"]
        if request.gpu_ids or gpus:
            from docker.types import DeviceRequest

            kw["device_requests"] = [
                DeviceRequest(device_ids=[str(g) for g in request.gpu_ids], capabilities=[["gpu"]])
                if request.gpu_ids else DeviceRequest(count=int(gpus), capabilities=[["gpu"]])]
        for key in ("network", "shm_size", "user", "runtime", "ipc_mode"):
            if o[key]:
                kw[key] = o[key]
        return kw

    def submit(self, request: JobRequest) -> JobHandle:
        """``containers.run(detach=True)``; a missing image yields a FAILED/IMAGE handle."""
        _util.check_request(request, self.name)  # names reach scripts/specs: refuse before creating anything
        image = request.image or self._opts["image"]
        if not image:
            raise SubmitError("no container image for docker job", key="image", value=None,
                              expected="JobRequest.image or image=...")
        secrets = _util.secret_values(request)
        kw = self._run_kwargs(request, secrets)
        errors = self._errors()
        data = {"image": image, "container_name": kw["name"], "submitted_at": time.time(),
                "timeout_s": request.timeout_s, "secret_env": list(request.secret_env)}
        try:
            container = self.client().containers.run(image, **kw)
        except errors.ImageNotFound as exc:
            data["failed"] = {"reason": FailureReason.IMAGE.value,
                              "message": describe("image not found", key="image", value=image,
                                                  hint=str(exc))}
            return JobHandle(backend=self.name, job_id=kw["name"], name=request.name,
                             results_dir=request.results_dir, data=data)
        except errors.APIError as exc:
            raise SubmitError(f"docker refused the container ({exc})", key="image", value=image) from exc
        except errors.DockerException as exc:
            raise PlatformUnavailableError(f"Docker unreachable ({exc})", key="base_url",
                                           value=self._opts["base_url"]) from exc
        return JobHandle(backend=self.name, job_id=str(container.id), name=request.name,
                         results_dir=request.results_dir, data=data)

    def find(self, name: str, results_dir: str | None = None) -> list[JobHandle]:
        """Containers submitted under ``name`` (oldest first), by their
        ``tao_automl.job`` label, running or ended (until cleanup removes them).

        For a driver killed after ``containers.run`` started the container but
        before the handle reached the ledger (:mod:`tao_automl.store.intents`),
        and for early-start jobs whose handle was never written.  The handle
        gets back the secret env names (log masking) and the time limit from
        the container's labels, the submit time from its creation time.
        """
        errors = self._errors()
        try:
            found = self.client().containers.list(all=True, filters={"label": f"tao_automl.job={name}"})
        except errors.APIError as exc:
            raise PlatformError(f"docker API error ({exc})", key="tao_automl.job", value=name) from exc
        except errors.DockerException as exc:
            raise PlatformUnavailableError(f"Docker unreachable ({exc})", key="base_url",
                                           value=self._opts["base_url"]) from exc
        out: list[tuple[float, JobHandle]] = []
        for c in found:
            labels = dict(getattr(c, "labels", None) or (c.attrs.get("Config") or {}).get("Labels") or {})
            if labels.get("tao_automl.job") != name:
                continue
            created = _created(c.attrs.get("Created"))
            timeout = labels.get("tao_automl.timeout_s") or None
            data = {"image": (c.attrs.get("Config") or {}).get("Image"), "container_name": getattr(c, "name", None),
                    "submitted_at": created, "timeout_s": float(timeout) if timeout else None,
                    "secret_env": [n for n in (labels.get("tao_automl.secret_env") or "").split(",") if n],
                    "recovered": True}
            out.append((created, JobHandle(backend=self.name, job_id=str(c.id), name=name,
                                           results_dir=results_dir, data=data)))
        return [h for _, h in sorted(out, key=lambda x: x[0])]

    # -- state ----------------------------------------------------------------------
    def _deadline(self, handle: JobHandle) -> float | None:
        t = handle.data.get("timeout_s")
        return handle.data.get("submitted_at", time.time()) + float(t) if t else None

    def status(self, handle: JobHandle) -> JobStatus:
        """From ``attrs['State']``; enforces the time limit."""
        if failed := handle.data.get("failed"):
            return JobStatus(state=JobState.FAILED, reason=FailureReason(failed["reason"]),
                             message=failed["message"])
        c = self._container(handle)
        c.reload()
        state = c.attrs.get("State", {})
        status = state.get("Status", c.status)
        if status in ("created",):
            return JobStatus(state=JobState.PENDING, message="container created")
        if status in ("running", "paused", "restarting"):
            deadline = self._deadline(handle)
            if deadline is not None and time.time() >= deadline:
                self._timed_out.add(handle.job_id)
                self._stop(c)
                return self.status(handle)
            return JobStatus(state=JobState.RUNNING, message=f"container {status}")
        code = state.get("ExitCode")
        if status not in ("exited", "dead"):
            return JobStatus(state=JobState.UNKNOWN, message=f"container status {status!r}")
        if code == 0 and not state.get("OOMKilled"):
            return JobStatus(state=JobState.SUCCEEDED, exit_code=0)
        if handle.job_id in self._canceled:
            return JobStatus(state=JobState.CANCELED, reason=FailureReason.CANCELED,
                             exit_code=code, message="canceled on request")
        reason, msg = classify_failure(code, self.logs(handle), oom_killed=bool(state.get("OOMKilled")),
                                       timed_out=handle.job_id in self._timed_out)
        if state.get("Error"):
            msg += f"; docker: {state['Error']}"
        return JobStatus(state=JobState.FAILED, reason=reason, exit_code=code, message=msg)

    def wait(self, handle: JobHandle, timeout: float) -> JobStatus:
        """``container.wait(timeout=...)`` bounded by the job's time limit."""
        if handle.data.get("failed"):
            return self.status(handle)
        limit = max(0.0, timeout)
        if (deadline := self._deadline(handle)) is not None:
            limit = max(0.0, min(limit, deadline - time.time()))
        try:
            self._container(handle).wait(timeout=limit)
        except (JobNotFoundError, PlatformUnavailableError):
            raise
        except Exception:  # requests ReadTimeout/ConnectionError on timeout  # noqa: BLE001
            pass
        return self.status(handle)

    def logs(self, handle: JobHandle, since: int = 0) -> str:
        """Container stdout+stderr from offset ``since``; secret values masked."""
        if handle.data.get("failed"):
            return ""
        raw = self._container(handle).logs(stdout=True, stderr=True)
        text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
        values = [os.environ.get(n, "") for n in handle.data.get("secret_env", ())]
        return _util.redact(text[max(0, since):], values)

    def _stop(self, c) -> None:
        errors = self._errors()
        try:
            c.stop(timeout=int(self._opts["grace_period_s"]))
        except errors.NotFound:
            return
        except errors.APIError:
            pass
        try:
            c.reload()
            if c.attrs.get("State", {}).get("Running"):
                c.kill()
        except (errors.NotFound, errors.APIError):
            pass

    def cancel(self, handle: JobHandle) -> None:
        """``stop(timeout=grace)`` then ``kill()``. Idempotent."""
        if handle.data.get("failed") or self.status(handle).terminal:
            return
        self._canceled.add(handle.job_id)
        self._stop(self._container(handle))

    def list_artifacts(self, handle: JobHandle) -> list[str]:
        return _util.list_artifacts(handle)

    def read_artifact(self, handle: JobHandle, path: str) -> bytes:
        return _util.read_artifact(handle, path)

    def cleanup(self, handle: JobHandle) -> None:
        """Remove the container (results stay on the host)."""
        if handle.data.get("failed"):
            return
        errors = self._errors()
        try:
            self.client().containers.get(handle.job_id).remove(force=True)
        except errors.NotFound:
            pass
        except errors.APIError as exc:
            raise PlatformError(f"cannot remove container ({exc})", key=handle.job_id) from exc


def _created(text: object) -> float:
    """Docker's ``Created`` (RFC 3339, nanoseconds) as epoch seconds (now when unreadable)."""
    from datetime import datetime

    if not isinstance(text, str) or not text:
        return time.time()
    head, _, frac = text.rstrip("Z").partition(".")
    try:
        t = datetime.fromisoformat(head + "+00:00").timestamp()
    except ValueError:
        return time.time()
    digits = "".join(ch for ch in frac if ch.isdigit())
    return t + (float("0." + digits) if digits else 0.0)
