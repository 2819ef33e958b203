"""TaoSdkBackend: the adapter for nvidia-tao-sdk platform objects.

The real VirtualEnvSDK runs real jobs here (the full behaviour is in the
platform contract suite, tests/contract).  These tests cover what the suite
does not: the trip through pickling to a Ray worker (the SDK object stays in
the driver and is called over a local socket), option validation, and the
container SDK classes (Docker, SLURM, Kubernetes, Brev) at their client
boundary: the real SDK classes, constructed with a fake execution handler in
place of the service they need.
"""

from __future__ import annotations

import pickle
import subprocess
import sys
from pathlib import Path

import pytest

tao_sdk = pytest.importorskip("tao_sdk")

from tao_automl.errors import SettingsError, SubmitError  # noqa: E402
from tao_automl.platforms import (  # noqa: E402
    FailureReason,
    JobRequest,
    JobState,
    LocalBackend,
    TaoSdkBackend,
    get_backend,
)
from tao_automl.platforms.tao_sdk import is_tao_sdk  # noqa: E402


@pytest.fixture(scope="module")
def venv(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("venv") / "v"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True)
    return path


@pytest.fixture
def vsdk(venv, tmp_path):
    from tao_sdk.platforms.virtualenv import VirtualEnvSDK

    return VirtualEnvSDK(venv_path=venv, work_dir=tmp_path / "jobs", state_file=tmp_path / "jobs.db")


def test_get_backend_wraps_a_tao_sdk_object(vsdk):
    b = get_backend(vsdk)
    assert isinstance(b, TaoSdkBackend) and b.kind == "VirtualEnvSDK"
    assert is_tao_sdk(vsdk) and not is_tao_sdk(LocalBackend()) and not is_tao_sdk("local")


def test_unknown_platform_kwarg_names_the_accepted_ones(vsdk):
    with pytest.raises(SettingsError, match="partition") as info:
        get_backend(vsdk, partition="gpu")
    assert "upload_excludes" in str(info.value) and "env_vars" in str(info.value)
    b = get_backend(vsdk, env_vars={"A": "1"}, upload_excludes=["*.tmp"])  # accepted: the SDK's own
    assert b._extra == {"upload_excludes": ["*.tmp"]}


def test_not_a_sdk_object_is_an_error():
    with pytest.raises(SettingsError, match="TAO SDK platform object"):
        TaoSdkBackend(object())


def test_pickled_backend_calls_the_driver_sdk_over_a_socket(vsdk, tmp_path):
    """What a Ray worker gets: a backend whose SDK calls go to the driver's object."""
    b = TaoSdkBackend(vsdk, env_vars={"FROM_KWARG": "k"})
    remote = pickle.loads(pickle.dumps(b))
    assert remote._sdk is not vsdk and remote.kind == "VirtualEnvSDK"
    assert remote._opts["env_vars"] == {"FROM_KWARG": "k"}
    script = tmp_path / "train.py"
    script.write_text("import os, pathlib\npathlib.Path('out.txt').write_text(os.environ['FROM_KWARG'])\n"
                      "print('accuracy: 0.75')\n")
    h = remote.submit(JobRequest(name="w", results_dir=str(tmp_path / "r"),
                                 argv=["python", str(script)]))
    st = remote.wait(h, 60)
    assert st.state is JobState.SUCCEEDED, st
    assert remote.read_artifact(h, "out.txt") == b"k"
    assert "accuracy: 0.75" in remote.logs(h)
    # the driver's own SDK object knows the job: one SDK, one job table
    assert vsdk.get_job_status(h.job_id).status == "Complete"
    again = pickle.loads(pickle.dumps(remote))  # a worker may pickle it on
    assert again.status(h).state is JobState.SUCCEEDED


def test_sdk_exception_becomes_a_submit_error(vsdk, tmp_path):
    b = TaoSdkBackend(vsdk)
    with pytest.raises(SubmitError, match="does not exist"):
        b.submit(JobRequest(name="x", results_dir=str(tmp_path), argv=["python", "/nonexistent/x.py"]))


# ----------------------------------------------------------- container SDKs
class FakeHandler:
    """Stands in for the service client behind a container SDK (docker
    daemon, SLURM over SSH, Kubernetes API, brev CLI): jobs are table rows."""

    def __init__(self) -> None:
        self.jobs: dict[str, str] = {}
        self.created: list[dict] = []
        self.canceled: list[str] = []
        self.base_results_dir = "/lustre/results"
        self.runtime: dict[str, dict] = {}

    def __getattr__(self, name):  # any other handler call: accepted, no effect
        return lambda *a, **k: None

    def get_backend_identity(self):
        return "fake-service-1"

    def get_canonical_results_root(self):
        return "/lustre/results"

    def get_job_name(self, job_id):
        return f"tao-{job_id[:8]}"

    def get_job_runtime_identity(self, job_id):
        return self.runtime.setdefault(job_id, {"job_name": self.get_job_name(job_id)})

    def get_runtime_identity(self, job_id, *a, **k):
        return self.get_job_runtime_identity(job_id)

    def restore_job_runtime(self, job_id, identity):
        self.runtime[job_id] = dict(identity or {})
        return True

    def resolve_resource_shape(self, *a, **k):
        return None, None

    def create_job(self, *a, **k):
        self.created.append(k)
        self.jobs[k["job_id"]] = "Running"
        return {}

    def get_tao_job_status(self, job_id, **k):
        return self.jobs.get(job_id)

    def normalize_status(self, raw):
        return raw or "Unknown"

    def get_job_message(self, job_id):
        return ""

    def get_job_logs(self, job_id, tail_lines=None):
        return "epoch 1: accuracy: 0.5\n"

    def cancel_job(self, job_id):
        self.canceled.append(job_id)
        self.jobs[job_id] = "Canceled"
        return True

    def delete_job(self, job_id):
        return self.cancel_job(job_id)


def _docker(monkeypatch, fake):
    from tao_sdk.platforms.docker import sdk

    monkeypatch.setattr(sdk.DockerHandler, "from_credentials", classmethod(lambda cls, c: fake))
    return sdk.DockerSDK()


def _slurm(monkeypatch, fake):
    from tao_sdk.platforms.slurm import sdk

    monkeypatch.setenv("SLURM_USER", "u")
    monkeypatch.setenv("SLURM_HOSTNAME", "login")
    monkeypatch.setenv("SLURM_BASE_RESULTS_DIR", "/lustre/results")
    monkeypatch.setattr(sdk.SlurmHandler, "from_credentials", classmethod(lambda cls, c: fake))
    return sdk.SlurmSDK()


def _kubernetes(monkeypatch, fake):
    from tao_sdk.platforms.kubernetes import sdk

    monkeypatch.setattr(sdk.KubernetesHandler, "from_credentials", classmethod(lambda cls, c: fake))
    return sdk.KubernetesSDK()


def _brev(monkeypatch, fake):
    import tao_sdk.platforms.brev.handler as handler

    monkeypatch.setattr(handler, "BrevHandler", lambda cli: fake)
    from tao_sdk.platforms.brev import sdk

    return sdk.BrevSDK()


@pytest.mark.parametrize("make", [_docker, _slurm, _kubernetes, _brev],
                         ids=["docker", "slurm", "kubernetes", "brev"])
def test_container_sdk_at_the_client_boundary(make, monkeypatch, tmp_path):
    monkeypatch.setenv("TAO_SDK_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("TAO_TEST_SECRET", "s3cr3t-value")
    fake = FakeHandler()
    sdk = make(monkeypatch, fake)
    b = get_backend(sdk)
    with pytest.raises(SubmitError, match="image"):
        b.submit(JobRequest(name="noimg", results_dir=str(tmp_path / "r0"), command="true"))
    h = b.submit(JobRequest(name="t1", image="nvcr.io/nvidia/tao:1", results_dir=str(tmp_path / "r"),
                            command="train --config /spec.yaml", env={"PLAIN": "1"},
                            secret_env=("TAO_TEST_SECRET",)))
    assert h.backend == "tao_sdk" and h.data["sdk"] == type(sdk).__name__
    assert "s3cr3t-value" not in str(h.to_dict())
    assert len(fake.created) == 1
    sent = str(fake.created[0])
    assert "nvcr.io/nvidia/tao:1" in sent and "train --config /spec.yaml" in sent
    assert b.status(h).state is JobState.RUNNING
    assert "accuracy: 0.5" in b.logs(h)
    b.cancel(h)
    st = b.status(h)
    assert st.state is JobState.CANCELED and st.reason is FailureReason.CANCELED
    h2 = b.submit(JobRequest(name="t2", image="nvcr.io/nvidia/tao:1", results_dir=str(tmp_path / "r2"),
                             argv=["python", "train.py", "--lr", "0.1"]))
    assert "python train.py --lr 0.1" in str(fake.created[1])
    fake.jobs[h2.job_id] = "Error"
    assert b.status(h2).state is JobState.FAILED
