"""Backend fixture for the platform contract suite.

``backend`` is parametrized over the local backend, the TAO SDK adapter
around nvidia-tao-sdk's real ``VirtualEnvSDK`` (jobs are real processes in a
virtual environment the fixture creates from this interpreter; skipped when
``tao_sdk`` is not installed) and the real SLURM backend (marker ``slurm``;
skipped unless a controller answers ``sinfo``).  Each
parameter is a :class:`tao_automl.testing.platform.PlatformHarness` that
knows how to build a fresh backend instance (for reattach tests) and how to
tell whether a job's process is gone.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tao_automl.platforms import LocalBackend, SlurmBackend
from tao_automl.platforms.local import process_group_alive
from tao_automl.testing.platform import PlatformHarness


def sdk_job_gone(jobs: str):
    def gone(handle) -> bool:
        meta = Path(jobs) / "jobs" / handle.job_id / "metadata.json"
        return not process_group_alive(int(json.loads(meta.read_text())["pid"]))

    return gone


def slurm_job_gone(handle) -> bool:
    out = subprocess.run(["squeue", "-h", "-j", handle.job_id, "-o", "%T"],
                         capture_output=True, text=True).stdout.strip()
    return out == ""


def make_venv(path: Path) -> Path:
    """A virtual environment whose python sees this interpreter's packages
    (a ``.pth`` file naming our site-packages); no pip, no network."""
    import site

    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True)
    purelib = subprocess.run([str(path / "bin" / "python"), "-c",
                              "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             check=True, capture_output=True, text=True).stdout.strip()
    Path(purelib, "_tao_automl_parent.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    return path


@pytest.fixture(scope="session")
def sdk_venv(tmp_path_factory) -> Path:
    return make_venv(tmp_path_factory.mktemp("sdk-venv") / "venv")


def _slurm_up() -> bool:
    if not shutil.which("sinfo"):
        return False
    try:
        res = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, timeout=10)
    except subprocess.TimeoutExpired:
        return False
    return res.returncode == 0 and any(s.startswith(("idle", "mix", "alloc"))
                                       for s in res.stdout.split())


@pytest.fixture(params=["local", "tao_sdk", pytest.param("slurm", marks=pytest.mark.slurm)])
def backend(request, tmp_path_factory) -> PlatformHarness:
    if request.param == "local":
        return PlatformHarness(name="local", make=lambda: LocalBackend(grace_period_s=2.0),
                               prompt_s=0.5, start_s=2.0)
    if request.param == "tao_sdk":
        pytest.importorskip("tao_sdk")
        from tao_sdk.platforms.virtualenv import VirtualEnvSDK

        from tao_automl.platforms import TaoSdkBackend

        venv = request.getfixturevalue("sdk_venv")
        jobs = tmp_path_factory.mktemp("sdk-jobs")

        def make() -> TaoSdkBackend:
            # a new SDK object over the same state store, as a resumed driver builds it
            return TaoSdkBackend(VirtualEnvSDK(venv_path=venv, work_dir=jobs,
                                               state_file=jobs / "jobs.db"))

        return PlatformHarness(name="tao_sdk", make=make, job_gone=sdk_job_gone(str(jobs)),
                               prompt_s=1.0, start_s=5.0)
    if not _slurm_up():
        pytest.skip("no SLURM controller answers sinfo (run `bash .ci/slurm-up.sh` as root)")
    return PlatformHarness(name="slurm", make=lambda: SlurmBackend(grace_period_s=2.0, poll_interval_s=0.2),
                           job_gone=slurm_job_gone, prompt_s=3.0, start_s=30.0, python="python3")
