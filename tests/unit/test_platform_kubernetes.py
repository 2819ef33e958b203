"""KubernetesBackend at the client boundary: real ``kubernetes.client`` model
objects, fake BatchV1Api/CoreV1Api, real ``ApiException``; and the platform
contract suite against a fake cluster (:class:`LocalCluster`) whose Jobs run
their container's command as a local process."""

from __future__ import annotations

import datetime
import threading
import time

import attrs
import pytest
from fake_jobs import FakeProcess
from kubernetes import client as k
from kubernetes.client.rest import ApiException

from tao_automl.errors import JobNotFoundError, SubmitError, TransientSubmitError
from tao_automl.platforms import FailureReason, JobRequest, JobState, KubernetesBackend
from tao_automl.testing.platform import PlatformContract, PlatformHarness


class FakeBatch:
    def __init__(self):
        self.jobs, self.status, self.patches, self.deleted, self.error = {}, {}, [], [], None

    def create_namespaced_job(self, namespace, body):
        if self.error:
            raise self.error
        self.jobs[body.metadata.name] = body

    def read_namespaced_job_status(self, name, namespace):
        if name not in self.jobs:
            raise ApiException(status=404, reason="Not Found")
        job = self.jobs[name]
        job.status = self.status.get(name, k.V1JobStatus())
        return job

    def patch_namespaced_job(self, name, namespace, body):
        self.patches.append((name, body))
        self.jobs[name].metadata.annotations.update(body["metadata"]["annotations"])

    def delete_namespaced_job(self, name, namespace, propagation_policy=None):
        self.deleted.append(name)


class FakeCore:
    def __init__(self):
        self.secrets, self.pod, self.log, self.deleted = {}, None, "", []

    def create_namespaced_secret(self, namespace, body):
        self.secrets[body.metadata.name] = body

    def list_namespaced_pod(self, namespace, label_selector):
        return k.V1PodList(items=[self.pod] if self.pod else [])

    def read_namespaced_pod_log(self, name, namespace):
        return self.log

    def delete_namespaced_secret(self, name, namespace):
        self.deleted.append(name)


def _pod(phase, terminated=None, waiting=None):
    state = k.V1ContainerState(terminated=terminated, waiting=waiting)
    cs = k.V1ContainerStatus(name="job", image="i", image_id="", ready=False, restart_count=0,
                             state=state)
    return k.V1Pod(metadata=k.V1ObjectMeta(name="pod-1"),
                   status=k.V1PodStatus(phase=phase, container_statuses=[cs]))


@pytest.fixture
def env():
    batch, core = FakeBatch(), FakeCore()
    return KubernetesBackend(batch_api=batch, core_api=core, namespace="ml", grace_period_s=5), \
        batch, core


def test_job_spec(env, monkeypatch):
    b, batch, core = env
    monkeypatch.setenv("NGC_KEY", "ngc-secret-abc")
    h = b.submit(JobRequest(name="Trial_1", image="nvcr.io/tao:1", command="train",
                            env={"A": "1"}, secret_env=("NGC_KEY",), gpu_count=4,
                            timeout_s=3600.5, labels={"trial": "1"}))
    job = batch.jobs[h.job_id]
    assert isinstance(job, k.V1Job) and job.spec.backoff_limit == 0
    assert job.spec.active_deadline_seconds == 3601
    pod = job.spec.template.spec
    assert pod.restart_policy == "Never" and pod.termination_grace_period_seconds == 5
    c = pod.containers[0]
    assert c.command == ["bash", "-c", "train"] and c.resources.limits == {"nvidia.com/gpu": "4"}
    env_by_name = {e.name: e for e in c.env}
    assert env_by_name["A"].value == "1"
    ref = env_by_name["NGC_KEY"].value_from.secret_key_ref
    assert env_by_name["NGC_KEY"].value is None and ref.key == "NGC_KEY"
    assert core.secrets[ref.name].string_data == {"NGC_KEY": "ngc-secret-abc"}
    assert "ngc-secret-abc" not in str(job.to_dict()) and "ngc-secret-abc" not in str(h.to_dict())
    assert h.job_id.startswith("trial_1-") or h.job_id.startswith("trial-1-")


@pytest.mark.parametrize(
    ("jstatus", "pod", "log", "expected"),
    [
        (k.V1JobStatus(active=1), _pod("Pending"), "", (JobState.PENDING, None, None)),
        (k.V1JobStatus(active=1), _pod("Running"), "", (JobState.RUNNING, None, None)),
        (k.V1JobStatus(succeeded=1), None, "", (JobState.SUCCEEDED, None, 0)),
        (k.V1JobStatus(failed=1), _pod("Failed", k.V1ContainerStateTerminated(
            exit_code=137, reason="OOMKilled")), "", (JobState.FAILED, FailureReason.OOM, 137)),
        (k.V1JobStatus(failed=1), _pod("Failed", k.V1ContainerStateTerminated(
            exit_code=1, reason="Error")), "FileNotFoundError: /data/x",
         (JobState.FAILED, FailureReason.DATA, 1)),
        (k.V1JobStatus(conditions=[k.V1JobCondition(type="Failed", status="True",
                                                    reason="DeadlineExceeded")]),
         None, "", (JobState.FAILED, FailureReason.TIMEOUT, None)),
        (k.V1JobStatus(active=1), _pod("Pending", waiting=k.V1ContainerStateWaiting(
            reason="ImagePullBackOff", message="pull access denied")), "",
         (JobState.FAILED, FailureReason.IMAGE, None)),
        (k.V1JobStatus(active=1), _pod("Pending", waiting=k.V1ContainerStateWaiting(
            reason="ErrImagePull")), "", (JobState.FAILED, FailureReason.IMAGE, None)),
    ],
)
def test_status_mapping(env, jstatus, pod, log, expected):
    b, batch, core = env
    h = b.submit(JobRequest(name="s", image="i", command="x"))
    batch.status[h.job_id], core.pod, core.log = jstatus, pod, log
    st = b.status(h)
    assert (st.state, st.reason, st.exit_code) == expected, st


def test_logs_cancel_cleanup(env, monkeypatch):
    b, batch, core = env
    monkeypatch.setenv("TOK", "tok-abcdef")
    h = b.submit(JobRequest(name="s", image="i", command="x", secret_env=("TOK",)))
    batch.status[h.job_id], core.pod, core.log = k.V1JobStatus(active=1), _pod("Running"), \
        "epoch 1\nleak tok-abcdef\n"
    assert b.logs(h, since=8) == "leak ***\n"
    b.cancel(h)
    assert batch.patches[0][1]["spec"] == {"suspend": True}
    st = KubernetesBackend(batch_api=batch, core_api=core).status(h)  # fresh driver
    assert st.state is JobState.CANCELED
    b.cancel(h)
    assert len(batch.patches) == 1
    b.cleanup(h)
    assert batch.deleted == [h.job_id] and core.deleted == [h.data["secret"]]


def test_api_errors_mapped(env):
    b, batch, _ = env
    batch.error = ApiException(status=503, reason="Service Unavailable")
    with pytest.raises(TransientSubmitError):
        b.submit(JobRequest(name="s", image="i", command="x"))
    batch.error = ApiException(status=403, reason="Forbidden")
    with pytest.raises(SubmitError, match="ml"):
        b.submit(JobRequest(name="s", image="i", command="x"))
    from tao_automl.platforms import JobHandle

    with pytest.raises(JobNotFoundError):
        b.status(JobHandle(backend="kubernetes", job_id="gone", data={"namespace": "ml"}))


# -- the platform contract against a fake cluster whose Jobs run as local processes -------------

class LocalCluster:
    """BatchV1Api + CoreV1Api surface the backend uses.  A Job's one pod runs the
    container's command (env values and secretKeyRefs resolved) as a local
    process; ``activeDeadlineSeconds`` and ``suspend`` terminate it with the
    pod's grace period, as the Job controller does."""

    def __init__(self):
        self.jobs: dict[str, k.V1Job] = {}
        self.procs: dict[str, FakeProcess] = {}
        self.deadline_exceeded: set[str] = set()
        self.secrets: dict[str, k.V1Secret] = {}

    # CoreV1Api
    def create_namespaced_secret(self, namespace, body):
        self.secrets[body.metadata.name] = body

    def delete_namespaced_secret(self, name, namespace):
        self.secrets.pop(name, None)

    def list_namespaced_pod(self, namespace, label_selector):
        name = label_selector.removeprefix("job-name=")
        if name not in self.procs:
            return k.V1PodList(items=[])
        code = self.procs[name].exit_code
        if code is None:
            phase, state = "Running", k.V1ContainerState(running=k.V1ContainerStateRunning())
        else:
            phase = "Succeeded" if code == 0 else "Failed"
            state = k.V1ContainerState(terminated=k.V1ContainerStateTerminated(
                exit_code=code, reason="Completed" if code == 0 else "Error"))
        cs = k.V1ContainerStatus(name="job", image="i", image_id="", ready=code is None,
                                 restart_count=0, state=state)
        return k.V1PodList(items=[k.V1Pod(metadata=k.V1ObjectMeta(name=f"{name}-pod"),
                                          status=k.V1PodStatus(phase=phase, container_statuses=[cs]))])

    def read_namespaced_pod_log(self, name, namespace):
        return self.procs[name.removesuffix("-pod")].proc_log()

    # BatchV1Api
    def list_namespaced_job(self, namespace, label_selector=None):
        key, _, value = (label_selector or "").partition("=")
        return k.V1JobList(items=[j for j in self.jobs.values()
                                  if not key or (j.metadata.labels or {}).get(key) == value])

    def create_namespaced_job(self, namespace, body):
        pod = body.spec.template.spec
        body.metadata.creation_timestamp = datetime.datetime.now(datetime.UTC)
        (c,) = pod.containers
        env = {}
        for e in c.env or []:
            if e.value_from is not None:
                ref = e.value_from.secret_key_ref
                env[e.name] = self.secrets[ref.name].string_data[ref.key]
            else:
                env[e.name] = e.value
        self.jobs[body.metadata.name] = body
        self.procs[body.metadata.name] = proc = FakeProcess(list(c.command), env, c.working_dir)
        proc.proc_log = lambda: proc.log().decode("utf-8", "replace")

    def _grace(self, name) -> float:
        return float(self.jobs[name].spec.template.spec.termination_grace_period_seconds or 30)

    def read_namespaced_job_status(self, name, namespace):
        if name not in self.jobs:
            raise ApiException(status=404, reason="Not Found")
        job, proc = self.jobs[name], self.procs[name]
        limit = job.spec.active_deadline_seconds
        if limit and proc.exit_code is None and time.time() - proc.started >= limit:
            self.deadline_exceeded.add(name)
            proc.stop(self._grace(name))
        code = proc.exit_code
        if name in self.deadline_exceeded:
            st = k.V1JobStatus(failed=1, conditions=[k.V1JobCondition(
                type="Failed", status="True", reason="DeadlineExceeded")])
        elif job.spec.suspend:
            st = k.V1JobStatus(conditions=[k.V1JobCondition(type="Suspended", status="True")])
        elif code is None:
            st = k.V1JobStatus(active=1)
        elif code == 0:
            st = k.V1JobStatus(succeeded=1, conditions=[k.V1JobCondition(type="Complete", status="True")])
        else:
            st = k.V1JobStatus(failed=1, conditions=[k.V1JobCondition(
                type="Failed", status="True", reason="BackoffLimitExceeded")])
        job.status = st
        return job

    def patch_namespaced_job(self, name, namespace, body):
        job = self.jobs[name]
        job.metadata.annotations.update(body.get("metadata", {}).get("annotations", {}))
        if body.get("spec", {}).get("suspend"):
            job.spec.suspend = True
            threading.Thread(target=self.procs[name].stop, args=(self._grace(name),), daemon=True).start()

    def delete_namespaced_job(self, name, namespace, propagation_policy=None):
        self.jobs.pop(name, None)
        if name in self.procs:
            self.procs[name].signal(9)

    def job_gone(self, handle) -> bool:
        return self.procs[handle.job_id].gone()


class TestKubernetesPlatformContract(PlatformContract):
    @pytest.fixture
    def platform_harness(self):
        cluster = LocalCluster()
        yield PlatformHarness(
            name="kubernetes (fake cluster)",
            make=lambda: KubernetesBackend(batch_api=cluster, core_api=cluster, namespace="ml",
                                           grace_period_s=2),
            job_gone=cluster.job_gone,
            # the pod's working directory is the results folder (a volume in a real cluster)
            prepare=lambda r: attrs.evolve(r, image="tao:fake", cwd=r.results_dir),
            prompt_s=2.0, start_s=2.0, backend_files=False)
        for proc in cluster.procs.values():
            proc.remove()
