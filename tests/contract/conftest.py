"""Backend fixture for the platform contract suite.

``backend`` is parametrized over the local backend and the real SLURM backend
(marker ``slurm``; skipped unless a controller answers ``sinfo``).  Each
parameter is a :class:`Harness` that knows how to build a fresh backend
instance (for reattach tests) and how to tell whether a job's process is gone.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from tao_automl.platforms import LocalBackend, SlurmBackend
from tao_automl.platforms.local import process_group_alive


@dataclass
class Harness:
    kind: str
    make: Callable[[], object]
    prompt_s: float  # how soon wait() must return after the job's process exits
    start_s: float  # how long a job may take to start running

    def job_gone(self, handle) -> bool:
        if self.kind == "slurm":
            out = subprocess.run(["squeue", "-h", "-j", handle.job_id, "-o", "%T"],
                                 capture_output=True, text=True).stdout.strip()
            return out == ""
        return not process_group_alive(int(handle.data["pgid"]))


def _slurm_up() -> bool:
    if not shutil.which("sinfo"):
        return False
    try:
        res = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, timeout=10)
    except subprocess.TimeoutExpired:
        return False
    return res.returncode == 0 and any(s.startswith(("idle", "mix", "alloc"))
                                       for s in res.stdout.split())


@pytest.fixture(params=["local", pytest.param("slurm", marks=pytest.mark.slurm)])
def backend(request) -> Harness:
    if request.param == "local":
        return Harness("local", lambda: LocalBackend(grace_period_s=2.0), 0.5, 2.0)
    if not _slurm_up():
        pytest.skip("no SLURM controller answers sinfo (run `bash .ci/slurm-up.sh` as root)")
    return Harness("slurm", lambda: SlurmBackend(grace_period_s=2.0, poll_interval_s=0.2),
                   3.0, 30.0)
