"""DockerBackend at the SDK boundary: a fake DockerClient with scripted
container states and the real ``docker.errors`` exception classes; and the
platform contract suite against a fake daemon (:class:`LocalDockerClient`)
that runs each container's command as a local process."""

from __future__ import annotations

import itertools
import subprocess
import time

import attrs
import docker.errors
import pytest
import requests
from fake_jobs import FakeProcess

from tao_automl.errors import JobNotFoundError, PlatformUnavailableError, SubmitError
from tao_automl.platforms import DockerBackend, FailureReason, JobRequest, JobState
from tao_automl.testing.platform import PlatformContract, PlatformHarness


class FakeContainer:
    def __init__(self, cid, states, logs=b""):
        self.id, self._states, self._logs = cid, list(states), logs
        self.attrs = {"State": self._states[0]}
        self.calls = []

    @property
    def status(self):
        return self.attrs["State"]["Status"]

    def reload(self):
        if len(self._states) > 1:
            self._states.pop(0)
        self.attrs = {"State": self._states[0]}

    def logs(self, stdout=True, stderr=True):
        return self._logs

    def wait(self, timeout=None):
        self.calls.append(("wait", timeout))
        if self.attrs["State"]["Status"] == "running" and len(self._states) == 1:
            raise requests.exceptions.ReadTimeout("timed out")
        return {"StatusCode": self.attrs["State"].get("ExitCode", 0)}

    def stop(self, timeout=None):
        self.calls.append(("stop", timeout))
        self._states = [{"Status": "exited", "ExitCode": 143, "Running": False}]

    def kill(self):
        self.calls.append(("kill",))

    def remove(self, force=False):
        self.calls.append(("remove", force))


class FakeContainers:
    def __init__(self, container=None, run_error=None):
        self.container, self.run_error, self.run_args = container, run_error, None

    def run(self, image, **kw):
        self.run_args = (image, kw)
        if self.run_error:
            raise self.run_error
        return self.container

    def get(self, cid):
        if self.container is None or cid != self.container.id:
            raise docker.errors.NotFound("no such container")
        return self.container


class FakeClient:
    def __init__(self, **kw):
        self.containers = FakeContainers(**kw)


RUNNING = {"Status": "running", "Running": True}


def test_run_arguments_gpus_mounts_env_labels(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "hf-secret-xyz")
    c = FakeContainer("c1", [RUNNING])
    client = FakeClient(container=c)
    b = DockerBackend(client=client, mounts=["/data:/data:ro"], shm_size="8g")
    spec = tmp_path / "spec" / "train.yaml"
    spec.parent.mkdir()
    spec.write_text("a: 1")
    h = b.submit(JobRequest(name="t1", image="nvcr.io/tao:1", command="train --spec x",
                            results_dir=str(tmp_path / "res"), spec_path=str(spec),
                            env={"A": "1"}, secret_env=("HF_TOKEN",), gpu_count=2,
                            labels={"trial": "7"}))
    image, kw = client.containers.run_args
    assert image == "nvcr.io/tao:1" and kw["detach"] is True
    assert kw["command"] == ["bash", "-c", "train --spec x"]
    assert kw["environment"] == {"A": "1", "HF_TOKEN": "hf-secret-xyz"}
    assert kw["volumes"][str(tmp_path / "res")] == {"bind": str(tmp_path / "res"), "mode": "rw"}
    assert kw["volumes"][str(spec.parent)]["mode"] == "ro"
    assert kw["volumes"]["/data"] == {"bind": "/data", "mode": "ro"}
    # the job's name, and for find(): the secret env *names* (never values) and the time limit
    assert kw["labels"] == {"trial": "7", "tao_automl.job": "t1", "tao_automl.secret_env": "HF_TOKEN",
                            "tao_automl.timeout_s": ""} and kw["shm_size"] == "8g"
    (req,) = kw["device_requests"]
    assert req.count == 2 and req.capabilities == [["gpu"]]
    assert h.job_id == "c1" and "hf-secret-xyz" not in str(h.to_dict())
    assert b.status(h).state is JobState.RUNNING


@pytest.mark.parametrize(
    ("state", "logs", "expected"),
    [
        ({"Status": "exited", "ExitCode": 0}, b"", (JobState.SUCCEEDED, None, 0)),
        ({"Status": "exited", "ExitCode": 137, "OOMKilled": True}, b"", (JobState.FAILED, FailureReason.OOM, 137)),
        ({"Status": "exited", "ExitCode": 1}, b"KeyError: 'model.arch'\n",
         (JobState.FAILED, FailureReason.SPEC, 1)),
        ({"Status": "created"}, b"", (JobState.PENDING, None, None)),
    ],
)
def test_state_mapping(state, logs, expected):
    b = DockerBackend(client=FakeClient(container=FakeContainer("c", [state], logs)))
    h = b.submit(JobRequest(name="s", image="i", command="x"))
    st = b.status(h)
    assert (st.state, st.reason, st.exit_code) == expected


def test_logs_since_wait_cancel_cleanup():
    c = FakeContainer("c", [RUNNING], b"hello\nworld\n")
    b = DockerBackend(client=FakeClient(container=c), grace_period_s=3)
    h = b.submit(JobRequest(name="s", image="i", argv=["python", "t.py"]))
    assert b.logs(h, since=6) == "world\n"
    assert b.wait(h, 0.1).state is JobState.RUNNING  # ReadTimeout swallowed
    b.cancel(h)
    assert ("stop", 3) in c.calls
    assert b.status(h).state is JobState.CANCELED
    b.cancel(h)  # idempotent
    assert c.calls.count(("stop", 3)) == 1
    b.cleanup(h)
    assert ("remove", True) in c.calls


def test_time_limit_enforced_by_backend():
    c = FakeContainer("c", [RUNNING])
    b = DockerBackend(client=FakeClient(container=c))
    h = b.submit(JobRequest(name="s", image="i", command="sleep 99", timeout_s=0.05))
    time.sleep(0.1)
    st = b.status(h)
    assert (st.state, st.reason) == (JobState.FAILED, FailureReason.TIMEOUT)


def test_errors_are_mapped():
    b = DockerBackend(client=FakeClient(run_error=docker.errors.ImageNotFound("nope")))
    h = b.submit(JobRequest(name="s", image="missing:1", command="x"))
    st = b.status(h)
    assert (st.state, st.reason) == (JobState.FAILED, FailureReason.IMAGE)
    assert "missing:1" in st.message
    b = DockerBackend(client=FakeClient(run_error=docker.errors.APIError("conflict")))
    with pytest.raises(SubmitError):
        b.submit(JobRequest(name="s", image="i", command="x"))
    b = DockerBackend(client=FakeClient(
        run_error=docker.errors.DockerException("Connection refused")))
    with pytest.raises(PlatformUnavailableError):
        b.submit(JobRequest(name="s", image="i", command="x"))
    with pytest.raises(JobNotFoundError):
        DockerBackend(client=FakeClient()).status(
            __import__("tao_automl.platforms", fromlist=["JobHandle"]).JobHandle(
                backend="docker", job_id="gone"))
    with pytest.raises(SubmitError, match="image"):
        DockerBackend(client=FakeClient()).submit(JobRequest(name="s", command="x"))


def test_unreachable_daemon_is_platform_unavailable():
    b = DockerBackend(base_url="unix:///nonexistent/docker.sock")
    with pytest.raises(PlatformUnavailableError):
        b.submit(JobRequest(name="s", image="i", command="x"))


# -- the platform contract against a fake daemon that runs containers as local processes --------

class LocalContainer:
    """The surface of ``docker.models.containers.Container`` the backend uses."""

    def __init__(self, cid: str, argv: list[str], env: dict, cwd: str | None, *, name: str = "",
                 labels: dict | None = None, image: str = "") -> None:
        self.id, self.proc, self.removed = cid, FakeProcess(argv, env, cwd), False
        self.name, self.labels, self.image = name, dict(labels or {}), image
        self.created = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + f".{time.time_ns() % 10**9:09d}Z"
        self.reload()

    def reload(self):
        if self.removed:
            raise docker.errors.NotFound(f"no such container: {self.id}")
        code = self.proc.exit_code
        self.attrs = {"State": {"Status": "running", "Running": True} if code is None else
                      {"Status": "exited", "Running": False, "ExitCode": code, "OOMKilled": False},
                      "Created": self.created, "Config": {"Labels": self.labels, "Image": self.image}}

    @property
    def status(self):
        return self.attrs["State"]["Status"]

    def logs(self, stdout=True, stderr=True):
        return self.proc.log()

    def wait(self, timeout=None):
        try:
            return {"StatusCode": self.proc.wait(timeout)}
        except subprocess.TimeoutExpired:
            raise requests.exceptions.ReadTimeout("timed out") from None

    def stop(self, timeout=None):
        self.proc.stop(10 if timeout is None else timeout)

    def kill(self):
        self.proc.signal(9)

    def remove(self, force=False):
        self.proc.remove()
        self.removed = True


class LocalContainers:
    def __init__(self):
        self.all: dict[str, LocalContainer] = {}
        self._ids = itertools.count(1)

    def run(self, image, command=None, detach=False, environment=None, volumes=None,
            working_dir=None, name=None, labels=None, **kw):
        assert detach and image
        assert all(isinstance(v, str) for v in (labels or {}).values()), "docker labels are strings"
        for host, bind in (volumes or {}).items():
            assert host == bind["bind"], "the fake daemon supports same-path bind mounts only"
        cid = f"{next(self._ids):064x}"
        self.all[cid] = LocalContainer(cid, list(command), dict(environment or {}), working_dir,
                                       name=name or cid[:12], labels=labels, image=image)
        return self.all[cid]

    def list(self, all=False, filters=None):  # noqa: A002 - docker's own keyword
        """Docker's ``label=key=value`` filter (the only one the backend uses)."""
        key, _, value = (filters or {}).get("label", "").partition("=")
        return [c for c in self.all.values() if not c.removed
                and (all or c.proc.exit_code is None) and (not key or c.labels.get(key) == value)]

    def get(self, cid):
        if cid not in self.all or self.all[cid].removed:
            raise docker.errors.NotFound(f"no such container: {cid}")
        return self.all[cid]


class LocalDockerClient:
    """One fake daemon: every backend built on it (a restarted driver too) sees the same containers."""

    def __init__(self):
        self.containers = LocalContainers()

    def job_gone(self, handle) -> bool:
        return self.containers.all[handle.job_id].proc.gone()


class TestDockerPlatformContract(PlatformContract):
    @pytest.fixture
    def platform_harness(self):
        daemon = LocalDockerClient()
        yield PlatformHarness(
            name="docker (fake daemon)", make=lambda: DockerBackend(client=daemon, grace_period_s=2),
            job_gone=daemon.job_gone, prepare=lambda r: attrs.evolve(r, image="tao:fake"),
            prompt_s=0.5, start_s=2.0, backend_files=False)
        for c in daemon.containers.all.values():
            if not c.removed:
                c.remove()


def test_find_gives_a_recovered_handle_its_time_limit_and_submit_time(tmp_path):
    daemon = LocalDockerClient()
    b = DockerBackend(client=daemon, grace_period_s=1)
    t0 = time.time()
    job = b.submit(JobRequest(name="limited", results_dir=str(tmp_path), command="sleep 30", image="tao:fake",
                              timeout_s=100, secret_env=()))
    try:
        (got,) = DockerBackend(client=daemon).find("limited", str(tmp_path))
        assert got.job_id == job.job_id and got.data["recovered"] is True
        assert got.data["timeout_s"] == 100.0 and got.data["secret_env"] == []
        assert t0 - 1 <= got.data["submitted_at"] <= time.time() + 1  # from the container's Created
        assert got.data["image"] == "tao:fake" and got.results_dir == str(tmp_path)
    finally:
        b.cancel(job)
        b.cleanup(job)
