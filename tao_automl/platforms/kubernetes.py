"""Kubernetes backend (kubernetes client, imported lazily): one BatchV1 Job per
job, ``backoffLimit: 0``, ``activeDeadlineSeconds`` from ``timeout_s``, GPUs
as ``nvidia.com/gpu`` limits.  Secret values go into a per-job ``V1Secret``
referenced with ``secretKeyRef`` (never into the Job spec); cleanup() deletes
both.  Cancel suspends the Job (pods are terminated with the grace period)
and annotates it, so a restarted driver still reads CANCELED.
"""

from __future__ import annotations

import math
import time

from tao_automl.errors import (
    JobNotFoundError,
    PlatformError,
    PlatformUnavailableError,
    SubmitError,
    TransientSubmitError,
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
from tao_automl.platforms.paths import under_dir

__all__ = ["KubernetesBackend"]

CANCELED_ANNOTATION = "tao-automl/canceled"
_IMAGE_WAITING = {"ImagePullBackOff", "ErrImagePull", "InvalidImageName", "ErrImageNeverPull"}
_CONFIG_WAITING = {"CreateContainerConfigError", "CreateContainerError"}


def _map_api_error(exc, what: str, key: str, value, *, submit: bool = False) -> PlatformError:
    status = getattr(exc, "status", None)
    text = describe(f"{what}: Kubernetes API {status} {getattr(exc, 'reason', '')}".strip(),
                    key=key, value=value)
    if status == 404 and not submit:
        return JobNotFoundError(text)
    if status in (429, 500, 502, 503, 504) or status is None:
        return TransientSubmitError(text) if submit else PlatformUnavailableError(text)
    return SubmitError(text) if submit else PlatformError(text)


class KubernetesBackend:
    """Run jobs as Kubernetes Jobs.

    Keyword options:
        namespace: namespace for Jobs and Secrets ("default").
        batch_api, core_api: client objects (default built from kubeconfig).
        kubeconfig, context, in_cluster: how to load the client configuration.
        image: default image; image_pull_secrets: list of secret names.
        gpu_count: default GPUs per pod; service_account, node_selector,
        tolerations, volumes, volume_mounts: passed into the pod spec.
        ttl_seconds_after_finished: Job TTL (None = keep).
        grace_period_s: pod termination grace period (10).
    """

    name = "kubernetes"
    OPTIONS = {"namespace": "default", "batch_api": None, "core_api": None, "kubeconfig": None,
               "context": None, "in_cluster": False, "image": None, "image_pull_secrets": (),
               "gpu_count": 0, "service_account": None, "node_selector": None,
               "tolerations": (), "volumes": (), "volume_mounts": (),
               "ttl_seconds_after_finished": None, "grace_period_s": 10.0}

    def __init__(self, **kwargs) -> None:
        self._opts = _util.take_options(self.name, kwargs, self.OPTIONS)
        self.namespace = self._opts["namespace"]
        self._batch = self._opts["batch_api"]
        self._core = self._opts["core_api"]

    def configure(self, **kwargs) -> None:
        """Update options after construction (same names as the constructor)."""
        self.__init__(**{**self._opts, **kwargs})

    def _apis(self):
        if self._batch is None or self._core is None:
            try:
                from kubernetes import client, config
            except ImportError as exc:
                raise PlatformUnavailableError("the kubernetes package is not installed", key="kubernetes",
                                               expected="pip install 'tao-automl[kubernetes]'") from exc
            try:
                if self._opts["in_cluster"]:
                    config.load_incluster_config()
                else:
                    config.load_kube_config(config_file=self._opts["kubeconfig"],
                                            context=self._opts["context"])
            except Exception as exc:  # ConfigException, FileNotFoundError  # noqa: BLE001
                raise PlatformUnavailableError(f"cannot load Kubernetes configuration ({exc})",
                                               key="kubeconfig", value=self._opts["kubeconfig"],
                                               expected="a readable kubeconfig") from exc
            self._batch = self._batch or client.BatchV1Api()
            self._core = self._core or client.CoreV1Api()
        return self._batch, self._core

    def _mount_paths(self) -> list[str]:
        out = []
        for m in self._opts["volume_mounts"] or ():
            path = getattr(m, "mount_path", None)
            if path is None and isinstance(m, dict):
                path = m.get("mount_path", m.get("mountPath"))
            if path:
                out.append(str(path).rstrip("/") or "/")
        return out

    def check_paths(self, paths: list[str]) -> dict[str, PathCheck]:
        """Pods' volumes cannot be read from the driver: ``unverified``, saying
        whether the path is under one of ``volume_mounts`` at least."""
        mounts = self._mount_paths()
        out = {}
        for p in paths:
            under = next((m for m in mounts if under_dir(p, m)), None)
            where = (f"volume mount {under}" if under
                     else "not under any volume_mounts mount path: it must be in the image")
            out[p] = PathCheck(state=PathState.UNVERIFIED, where=f"kubernetes namespace {self.namespace}",
                               reason=f"the kubernetes backend cannot read the pods' volumes from here ({where})")
        return out

    # -- submit -----------------------------------------------------------------------
    def build_job(self, request: JobRequest, name: str, secret_name: str | None):
        """The ``V1Job`` for ``request`` (secret values only by reference)."""
        from kubernetes import client as k

        o = self._opts
        env = [k.V1EnvVar(name=n, value=v) for n, v in request.env.items()]
        env += [k.V1EnvVar(name=n, value_from=k.V1EnvVarSource(
            secret_key_ref=k.V1SecretKeySelector(name=secret_name, key=n)))
            for n in request.secret_env]
        gpus = request.gpu_count or o["gpu_count"]
        resources = k.V1ResourceRequirements(limits={"nvidia.com/gpu": str(gpus)}) if gpus else None
        container = k.V1Container(
            name="job", image=request.image or o["image"],
            command=["bash", "-c", request.command] if request.command is not None
            else list(request.argv or ()),
            env=env or None, resources=resources, working_dir=request.cwd,
            volume_mounts=list(o["volume_mounts"]) or None)
        labels = {"app.kubernetes.io/managed-by": "tao-automl",
                  **{_util.safe_name(key, 63): _util.safe_name(v, 63) for key, v in request.labels.items()}}
        pod = k.V1PodSpec(
            restart_policy="Never", containers=[container],
            termination_grace_period_seconds=int(o["grace_period_s"]),
            service_account_name=o["service_account"], node_selector=o["node_selector"],
            tolerations=list(o["tolerations"]) or None, volumes=list(o["volumes"]) or None,
            image_pull_secrets=[k.V1LocalObjectReference(name=s) for s in o["image_pull_secrets"]] or None)
        spec = k.V1JobSpec(
            backoff_limit=0, template=k.V1PodTemplateSpec(
                metadata=k.V1ObjectMeta(labels=labels), spec=pod),
            active_deadline_seconds=math.ceil(request.timeout_s) if request.timeout_s else None,
            ttl_seconds_after_finished=o["ttl_seconds_after_finished"])
        return k.V1Job(api_version="batch/v1", kind="Job",
                       metadata=k.V1ObjectMeta(name=name, labels=labels, annotations={
                           "tao-automl/name": request.name,
                           # what a lookup by name (find) needs: names only, never values
                           "tao-automl/secret": secret_name or "",
                           "tao-automl/secret-env": ",".join(request.secret_env)}),
                       spec=spec)

    def submit(self, request: JobRequest) -> JobHandle:
        """Create the Secret (if any) and the Job."""
        _util.check_request(request, self.name)  # names reach scripts/specs: refuse before creating anything
        from kubernetes import client as k
        from kubernetes.client.rest import ApiException

        if not (request.image or self._opts["image"]):
            raise SubmitError("no container image for kubernetes job", key="image", value=None,
                              expected="JobRequest.image or image=...")
        secrets = _util.secret_values(request)
        batch, core = self._apis()
        name = _util.unique_name(request.name)[:63].rstrip("-.")
        secret_name = f"{name}-env" if secrets else None
        try:
            if secrets:
                core.create_namespaced_secret(self.namespace, k.V1Secret(
                    metadata=k.V1ObjectMeta(name=secret_name), string_data=secrets, type="Opaque"))
            batch.create_namespaced_job(self.namespace, self.build_job(request, name, secret_name))
        except ApiException as exc:
            raise _map_api_error(exc, "cannot create the Job", "namespace", self.namespace,
                                 submit=True) from exc
        except Exception as exc:  # urllib3 connection errors  # noqa: BLE001
            raise PlatformUnavailableError(f"Kubernetes API unreachable ({exc})", key="namespace",
                                           value=self.namespace) from exc
        return JobHandle(backend=self.name, job_id=name, name=request.name,
                         results_dir=request.results_dir,
                         data={"namespace": self.namespace, "secret": secret_name,
                               "secret_env": list(request.secret_env), "submitted_at": time.time()})

    def find(self, name: str, results_dir: str | None = None) -> list[JobHandle]:
        """Jobs submitted under ``name`` (oldest first): this namespace's Jobs
        labelled ``app.kubernetes.io/managed-by=tao-automl`` whose
        ``tao-automl/name`` annotation is ``name`` (until cleanup or the TTL
        deletes them).

        For a driver killed after the Job was created but before the handle
        reached the ledger (:mod:`tao_automl.store.intents`).  The handle gets
        back its Secret and secret env names (log masking) from the
        annotations, the submit time from the creation time.
        """
        batch, _ = self._apis()
        try:
            jobs = self._call(batch.list_namespaced_job, self.namespace,
                              label_selector="app.kubernetes.io/managed-by=tao-automl",
                              what="cannot list Jobs", key=name)
        except PlatformError:
            raise
        except Exception as exc:  # urllib3 connection errors  # noqa: BLE001
            raise PlatformUnavailableError(f"Kubernetes API unreachable ({exc})", key="namespace",
                                           value=self.namespace) from exc
        out: list[tuple[float, JobHandle]] = []
        for job in getattr(jobs, "items", None) or ():
            meta = job.metadata
            notes = dict(meta.annotations or {})
            if notes.get("tao-automl/name") != name:
                continue
            created = meta.creation_timestamp.timestamp() if meta.creation_timestamp else time.time()
            data = {"namespace": self.namespace, "secret": notes.get("tao-automl/secret") or None,
                    "secret_env": [n for n in (notes.get("tao-automl/secret-env") or "").split(",") if n],
                    "submitted_at": created, "recovered": True}
            out.append((created, JobHandle(backend=self.name, job_id=meta.name, name=name,
                                           results_dir=results_dir, data=data)))
        return [h for _, h in sorted(out, key=lambda x: x[0])]

    # -- state ----------------------------------------------------------------------------
    def _call(self, fn, *args, what: str, key: str, **kwargs):
        from kubernetes.client.rest import ApiException

        try:
            return fn(*args, **kwargs)
        except ApiException as exc:
            raise _map_api_error(exc, what, "job", key) from exc

    def _pod(self, handle: JobHandle):
        _, core = self._apis()
        pods = self._call(core.list_namespaced_pod, handle.data.get("namespace", self.namespace),
                          label_selector=f"job-name={handle.job_id}", what="cannot list pods",
                          key=handle.job_id)
        items = list(getattr(pods, "items", None) or [])
        items.sort(key=lambda p: str(getattr(p.metadata, "creation_timestamp", "") or ""))
        return items[-1] if items else None

    def status(self, handle: JobHandle) -> JobStatus:
        """Job conditions + the pod's container state."""
        batch, _ = self._apis()
        ns = handle.data.get("namespace", self.namespace)
        job = self._call(batch.read_namespaced_job_status, handle.job_id, ns,
                         what="cannot read the Job", key=handle.job_id)
        annotations = (job.metadata.annotations or {}) if job.metadata else {}
        st = job.status
        conditions = {c.type: c for c in (st.conditions or []) if c.status == "True"} if st else {}
        pod = self._pod(handle)
        cs = (pod.status.container_statuses or [None])[0] if pod and pod.status else None
        term = cs.state.terminated if cs and cs.state else None
        waiting = cs.state.waiting if cs and cs.state else None
        code = term.exit_code if term else None
        if annotations.get(CANCELED_ANNOTATION) == "true":
            return JobStatus(state=JobState.CANCELED, reason=FailureReason.CANCELED,
                             exit_code=code, message="canceled on request (Job suspended)")
        if (st and st.succeeded) or "Complete" in conditions:
            return JobStatus(state=JobState.SUCCEEDED, exit_code=0)
        if waiting and waiting.reason in _IMAGE_WAITING | _CONFIG_WAITING:
            reason = FailureReason.IMAGE if waiting.reason in _IMAGE_WAITING else FailureReason.SPEC
            return JobStatus(state=JobState.FAILED, reason=reason,
                             message=f"pod waiting: {waiting.reason}: {waiting.message or ''}".strip())
        failed = conditions.get("Failed")
        if failed is not None or (st and st.failed):
            cond_reason = getattr(failed, "reason", "") or ""
            text = self.logs(handle) if pod else ""
            reason, msg = classify_failure(
                code, text, oom_killed=bool(term and term.reason == "OOMKilled"),
                timed_out=cond_reason == "DeadlineExceeded",
                platform_reason=FailureReason.PREEMPTED if term and term.reason in
                ("Evicted", "Preempted") else None)
            detail = f"Job {cond_reason or 'failed'}" + (f", container {term.reason}" if term else "")
            return JobStatus(state=JobState.FAILED, reason=reason, exit_code=code,
                             message=f"{detail}: {msg}")
        if st and st.active and pod and pod.status and pod.status.phase == "Running":
            return JobStatus(state=JobState.RUNNING, message="pod running")
        phase = pod.status.phase if pod and pod.status else "no pod yet"
        return JobStatus(state=JobState.PENDING, message=f"pod {phase}")

    def wait(self, handle: JobHandle, timeout: float) -> JobStatus:
        """Poll with a short, growing backoff (0.05 s .. 2 s)."""
        return _util.poll_until_terminal(lambda: self.status(handle), timeout, first=0.05, cap=2.0)

    def logs(self, handle: JobHandle, since: int = 0) -> str:
        """The pod's log from offset ``since``; secret values masked."""
        import os

        pod = self._pod(handle)
        if pod is None:
            return ""
        _, core = self._apis()
        from kubernetes.client.rest import ApiException

        try:
            text = core.read_namespaced_pod_log(pod.metadata.name,
                                                handle.data.get("namespace", self.namespace))
        except ApiException as exc:
            if exc.status in (400, 404):  # container not started yet / pod gone
                return ""
            raise _map_api_error(exc, "cannot read pod log", "pod", pod.metadata.name) from exc
        values = [os.environ.get(n, "") for n in handle.data.get("secret_env", ())]
        return _util.redact(str(text or "")[max(0, since):], values)

    def cancel(self, handle: JobHandle) -> None:
        """Suspend + annotate the Job (its pods get SIGTERM, then SIGKILL). Idempotent."""
        if self.status(handle).terminal:
            return
        batch, _ = self._apis()
        body = {"metadata": {"annotations": {CANCELED_ANNOTATION: "true"}},
                "spec": {"suspend": True}}
        self._call(batch.patch_namespaced_job, handle.job_id,
                   handle.data.get("namespace", self.namespace), body,
                   what="cannot suspend the Job", key=handle.job_id)

    def list_artifacts(self, handle: JobHandle) -> list[str]:
        return _util.list_artifacts(handle)

    def read_artifact(self, handle: JobHandle, path: str) -> bytes:
        return _util.read_artifact(handle, path)

    def cleanup(self, handle: JobHandle) -> None:
        """Delete the Job (and its pods) and the per-job Secret."""
        from kubernetes.client.rest import ApiException

        batch, core = self._apis()
        ns = handle.data.get("namespace", self.namespace)
        for fn, name in ((batch.delete_namespaced_job, handle.job_id),
                         (core.delete_namespaced_secret, handle.data.get("secret"))):
            if not name:
                continue
            try:
                if fn is batch.delete_namespaced_job:
                    fn(name, ns, propagation_policy="Background")
                else:
                    fn(name, ns)
            except ApiException as exc:
                if exc.status != 404:
                    raise _map_api_error(exc, "cleanup failed", "job", name) from exc
