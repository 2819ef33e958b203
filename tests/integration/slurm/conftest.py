"""Real-SLURM integration tests: need the controller started by
``bash .ci/slurm-up.sh`` (run them with ``pytest -m slurm``)."""

from __future__ import annotations

import shutil
import subprocess

import pytest


@pytest.fixture(scope="session")
def slurm_up() -> None:
    if not shutil.which("sinfo"):
        pytest.skip("SLURM CLI not installed (run `bash .ci/slurm-up.sh` as root)")
    res = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, timeout=10)
    if res.returncode != 0 or not res.stdout.strip():
        pytest.skip("no SLURM controller answers sinfo (run `bash .ci/slurm-up.sh` as root)")
