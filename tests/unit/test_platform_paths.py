"""check_paths: each backend says whether a dataset path is readable where its
jobs run.  Local: this machine's file system, for real.  SLURM: fake
``srun``/``ssh`` executables on PATH that run the check script locally (the
real cluster is tests/integration/slurm/test_slurm_paths.py).  Docker,
Kubernetes, Brev: at the client boundary, no engine/cluster/instance."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from kubernetes import client as k

from tao_automl.errors import SettingsError
from tao_automl.platforms import (
    BrevBackend,
    DockerBackend,
    KubernetesBackend,
    LocalBackend,
    SlurmBackend,
)
from tao_automl.platforms.base import PathCheck, PathState
from tao_automl.platforms.paths import check_paths, parse_shell_check, under_dir

READABLE, UNREADABLE, UNVERIFIED = PathState.READABLE, PathState.UNREADABLE, PathState.UNVERIFIED


@pytest.fixture
def data(tmp_path):
    d = tmp_path / "data"
    d.mkdir()
    (d / "train.npz").write_bytes(b"x")
    (d / "a-file").write_text("not a folder")
    return d


def states(answers):
    return {p: a.state for p, a in answers.items()}


# -- local ----------------------------------------------------------------------------

def test_local_readable_missing_and_under_a_file(data):
    paths = [str(data / "train.npz"), str(data), str(data / "nope.npz"), str(data / "a-file" / "x.npz")]
    got = check_paths(LocalBackend(), paths)
    assert states(got) == {paths[0]: READABLE, paths[1]: READABLE, paths[2]: UNREADABLE, paths[3]: UNREADABLE}
    assert "does not exist on this machine" in got[paths[2]].reason
    assert "does not exist" in got[paths[3]].reason and got[paths[0]].reason == ""


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads every file: permission bits cannot deny it")
def test_local_permission_denied(data):
    f = data / "secret.npz"
    f.write_bytes(b"x")
    f.chmod(0)
    got = check_paths(LocalBackend(), [str(f)])[str(f)]
    assert got.state is UNREADABLE and "not readable" in got.reason


# -- the wrapper preflight calls --------------------------------------------------------

class NoCheck:
    name = "acme"


class Broken:
    name = "broken"

    def check_paths(self, paths):
        raise RuntimeError("cluster on fire")


class Partial:
    name = "partial"

    def check_paths(self, paths):
        return {paths[0]: PathCheck(state=READABLE)}


def test_backend_without_method_or_failing_or_silent_is_unverified():
    got = check_paths(NoCheck(), ["/a", "/a", "/b"])
    assert list(got) == ["/a", "/b"] and set(states(got).values()) == {UNVERIFIED}
    assert "no check_paths" in got["/a"].reason and "acme" in got["/a"].reason
    got = check_paths(Broken(), ["/a"])["/a"]
    assert got.state is UNVERIFIED and "cluster on fire" in got.reason
    got = check_paths(Partial(), ["/a", "/b"])
    assert got["/a"].state is READABLE and got["/b"].state is UNVERIFIED
    assert "no answer" in got["/b"].reason
    assert check_paths(NoCheck(), []) == {}


def test_shell_check_parsing_and_under_dir():
    out = "noise\ntao-automl-path-host n7\ntao-automl-path 0 readable\ntao-automl-path 2 unreadable\n"
    got = parse_shell_check(["/a", "/b", "/c"], out, where="node {host}")
    assert got["/a"] == PathCheck(state=READABLE, where="node n7")
    assert "/b" not in got and got["/c"].state is UNREADABLE and "node n7" in got["/c"].reason
    assert under_dir("/data/x", "/data") and under_dir("/data", "/data/") and not under_dir("/database", "/data")


# -- slurm (fake CLI) -------------------------------------------------------------------

def _tool(bindir: Path, name: str, body: str) -> None:
    p = bindir / name
    p.write_text("#!/bin/bash\n" + body + "\n")
    p.chmod(p.stat().st_mode | stat.S_IEXEC)


@pytest.fixture
def fakebin(tmp_path, monkeypatch):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    monkeypatch.setenv("PATH", f"{bindir}:/usr/bin:/bin")
    monkeypatch.setenv("FAKE_LOG", str(tmp_path / "calls.log"))
    # srun: record the options, then run the command (everything after the --options) here
    _tool(bindir, "srun", 'echo "srun $*" >> "$FAKE_LOG"; while [[ $1 == --* ]]; do shift; done; exec "$@"')
    return bindir


def test_slurm_checks_in_a_short_srun_job(fakebin, data):
    good, bad = str(data / "train.npz"), str(data / "a-file" / "x")
    got = SlurmBackend(partition="gpu", account="proj").check_paths([good, bad, good])
    assert states(got) == {good: READABLE, bad: UNREADABLE}
    assert got[bad].reason == f"does not exist on SLURM node {os.uname().nodename} (srun)"
    call = Path(os.environ["FAKE_LOG"]).read_text()
    assert call.count("srun ") == 1  # one job for all paths
    for opt in ("--ntasks=1", "--time=1", "--immediate=30", "--partition=gpu", "--account=proj"):
        assert opt in call


def test_slurm_failed_check_job_is_unverified_not_a_blocker(fakebin, data):
    _tool(fakebin, "srun", 'echo "srun: error: Unable to allocate resources: Invalid partition name" >&2; exit 1')
    got = SlurmBackend(partition="nope").check_paths([str(data)])[str(data)]
    assert got.state is UNVERIFIED
    assert "exit code 1" in got.reason and "Invalid partition name" in got.reason


def test_slurm_without_cli_is_unverified(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    got = SlurmBackend().check_paths(["/x"])["/x"]
    assert got.state is UNVERIFIED and "could not run" in got.reason and "srun" in got.reason


def test_slurm_over_ssh_checks_on_the_login_host(fakebin, data):
    # a fake `ssh` that runs the remote command here; srun must not be used
    _tool(fakebin, "ssh", 'echo "ssh $*" >> "$FAKE_LOG"; shift 3; eval "$1"')
    good, bad = str(data / "train.npz"), str(data / "no such.npz")  # a space survives the quoting
    got = SlurmBackend(ssh_host="login1").check_paths([good, bad])
    assert states(got) == {good: READABLE, bad: UNREADABLE}
    assert "login host login1 (ssh)" in got[bad].reason
    calls = Path(os.environ["FAKE_LOG"]).read_text()
    assert "ssh -o BatchMode=yes login1" in calls and "srun" not in calls


def test_slurm_path_check_modes(fakebin, data):
    assert SlurmBackend(path_check="off").check_paths(["/x"])["/x"].state is UNVERIFIED
    got = SlurmBackend(path_check="login").check_paths([str(data), "/no/such"])
    assert states(got) == {str(data): READABLE, "/no/such": UNREADABLE}
    assert "submit host" in got["/no/such"].reason
    assert not Path(os.environ["FAKE_LOG"]).exists()  # neither check ran a job
    with pytest.raises(SettingsError, match="path_check"):
        SlurmBackend(path_check="sometimes")


# -- docker (no daemon: check_paths never touches the client) ------------------------------

class NoClient:
    class api:  # noqa: N801 -- docker.DockerClient.api.base_url for a local socket
        base_url = "http+docker://localhost"

    @property
    def containers(self):
        raise AssertionError("check_paths must not call the Docker API")


def test_docker_checks_the_host_side_of_the_mount(data):
    b = DockerBackend(client=NoClient(), mounts=[f"{data}:/workspace/data:ro", f"{data / 'a-file'}:/cfg"])
    paths = ["/workspace/data/train.npz", "/workspace/data", "/workspace/data/nope.npz", "/elsewhere/train.npz"]
    got = b.check_paths(paths)
    assert states(got) == {paths[0]: READABLE, paths[1]: READABLE, paths[2]: UNREADABLE, paths[3]: UNREADABLE}
    assert f"host side '{data}/nope.npz' of mount {data}:/workspace/data" in got[paths[2]].reason
    assert "not under any of the container's mounts" in got[paths[3]].reason
    assert "/workspace/data" in got[paths[3]].reason  # the mounts it has are listed


def test_docker_without_mounts_and_remote_daemon(data, monkeypatch):
    got = DockerBackend().check_paths([str(data)])[str(data)]  # exists here, but the container cannot see it
    assert got.state is UNREADABLE and "mounts: none" in got.reason
    remote = DockerBackend(base_url="tcp://gpu-box:2376", mounts=[f"{data}:/d"])
    got = remote.check_paths(["/d/train.npz"])["/d/train.npz"]
    assert got.state is UNVERIFIED and "tcp://gpu-box:2376 is remote" in got.reason
    monkeypatch.setenv("DOCKER_HOST", "ssh://me@gpu-box")
    assert DockerBackend(mounts=[f"{data}:/d"]).check_paths(["/d/x"])["/d/x"].state is UNVERIFIED


# -- kubernetes / brev: cannot verify from here ------------------------------------------

def test_kubernetes_says_it_cannot_verify():
    b = KubernetesBackend(batch_api=object(), core_api=object(), volume_mounts=[
        k.V1VolumeMount(name="data", mount_path="/datasets"), {"mountPath": "/scratch"}])
    got = b.check_paths(["/datasets/coco", "/scratch/x", "/opt/in-image"])
    assert set(states(got).values()) == {UNVERIFIED}
    assert "volume mount /datasets" in got["/datasets/coco"].reason
    assert "volume mount /scratch" in got["/scratch/x"].reason
    assert "not under any volume_mounts" in got["/opt/in-image"].reason


def test_brev_says_it_cannot_verify(tmp_path):
    b = BrevBackend(instance="my-gpu", brev_bin=str(tmp_path / "no-brev"))  # never called
    got = b.check_paths(["/data/x"])["/data/x"]
    assert got.state is UNVERIFIED and "my-gpu" in got.reason
