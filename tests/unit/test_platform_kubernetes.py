"""KubernetesBackend at the client boundary: real ``kubernetes.client`` model
objects, fake BatchV1Api/CoreV1Api, real ``ApiException``."""

from __future__ import annotations

import pytest
from kubernetes import client as k
from kubernetes.client.rest import ApiException

from tao_automl.errors import JobNotFoundError, SubmitError, TransientSubmitError
from tao_automl.platforms import FailureReason, JobRequest, JobState, KubernetesBackend


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
