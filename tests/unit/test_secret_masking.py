"""Issue 12 "Secrets": values of ``secret_env`` (and of ``secret("ENV")``
references, which join secret_env) are masked in everything written to disk:
the local backend's job.log as the wrapper writes it (streaming; the value
never touches disk), the slurm/brev output through the job script's filter,
and every file the package writes through :class:`Workspace` and WandB."""

from __future__ import annotations

import os
import random
import stat
import sys
import time
from pathlib import Path

import pytest

from tao_automl.platforms import BrevBackend, JobRequest, LocalBackend, SlurmBackend
from tao_automl.platforms import _local_wrapper as wrapper

SECRET = "s3cr3t-VALUE-0123456789-abcdef"
OTHER = "another'secret\"with $(quotes)"

PRINTER = r'''
import os, sys, time
v, w = os.environ["MY_SECRET"], os.environ["MY_OTHER"]
print(v, flush=True)
print("mid [" + v + "] line", flush=True)
sys.stdout.write("split " + v[:9]); sys.stdout.flush(); time.sleep(0.5)
sys.stdout.write(v[9:] + " joined\n"); sys.stdout.flush()
print("err " + v, file=sys.stderr, flush=True)
print("other " + w, flush=True)
sys.stdout.write("x" * 20000 + v + "y" * 20000 + "\n"); sys.stdout.flush()
sys.stdout.write("tail-without-newline " + v); sys.stdout.flush()
time.sleep(float(os.environ.get("SLEEP_AFTER", "0")))
'''


@pytest.fixture
def printer(tmp_path, monkeypatch):
    monkeypatch.setenv("MY_SECRET", SECRET)
    monkeypatch.setenv("MY_OTHER", OTHER)
    script = tmp_path / "printer.py"
    script.write_text(PRINTER)
    return script


def _check_masked(text: str) -> None:
    assert SECRET not in text and OTHER not in text and SECRET[:12] not in text.replace("split ", "")
    for needle in ("***\n", "mid [***] line", "split *** joined", "err ***", "other ***",
                   "x" * 100 + "***" + "y" * 100, "tail-without-newline ***"):
        assert needle in text, needle


def _on_disk(root: Path, needle: str) -> list[str]:
    return [str(p) for p in root.rglob("*") if p.is_file() and needle.encode() in p.read_bytes()]


# -- the streaming masker -------------------------------------------------------------------

@pytest.mark.parametrize("seed", range(20))
def test_masker_catches_values_split_across_any_chunks(tmp_path, seed):
    rng = random.Random(seed)
    values = [SECRET.encode(), b"tok-12345", b"abcdabcd-ab"]
    parts = []
    for _ in range(60):
        parts.append(rng.choice([b"plain text ", b"\n", b"\r", b"x" * rng.randint(0, 9000), *values]))
    stream = b"".join(parts)
    out_path = tmp_path / "out"
    fd = os.open(out_path, os.O_WRONLY | os.O_CREAT)
    m = wrapper._Masker(values, fd)
    i = 0
    while i < len(stream):
        n = rng.randint(1, 40)
        m.feed(stream[i:i + n])
        if rng.random() < 0.2:
            m.partial()  # an idle pause in the middle of a line
        i += n
    m.close()
    os.close(fd)
    got = out_path.read_bytes()
    want = stream
    for v in sorted(values, key=len, reverse=True):
        want = want.replace(v, b"***")
    assert got == want


# -- the local backend ------------------------------------------------------------------------

def test_local_job_log_never_holds_the_value(printer, tmp_path):
    b = LocalBackend(log_dir=str(tmp_path / "ctl"))
    h = b.submit(JobRequest(name="p", argv=["python", str(printer)], results_dir=str(tmp_path / "res"),
                            secret_env=("MY_SECRET", "MY_OTHER"), env={"SLEEP_AFTER": "1.5"}))
    time.sleep(1.0)  # while the job runs: not in the wrapper's argv (ps), not in the log so far
    pid = int(h.data["pid"])
    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    assert SECRET.encode() not in cmdline and b"MY_SECRET" not in cmdline
    assert _on_disk(tmp_path, SECRET) == []
    assert b.wait(h, 30).succeeded
    text = Path(h.data["log_path"]).read_text()
    _check_masked(text)
    assert b.logs(h) == text  # the in-memory view agrees
    assert _on_disk(tmp_path, SECRET) == [] and _on_disk(tmp_path, OTHER) == []


def test_local_masking_keeps_timeout_and_exit_codes(printer, tmp_path):
    b = LocalBackend(log_dir=str(tmp_path / "ctl"), grace_period_s=1)
    h = b.submit(JobRequest(name="t", argv=["python", str(printer)], secret_env=("MY_SECRET", "MY_OTHER"),
                            env={"SLEEP_AFTER": "60"}, timeout_s=2))
    st = b.wait(h, 30)
    assert st.reason is not None and st.reason.value == "timeout"
    text = Path(h.data["log_path"]).read_text()
    _check_masked(text)
    assert "time limit of 2 s exceeded" in text
    h = b.submit(JobRequest(name="f", command='echo "$MY_SECRET"; exit 7', secret_env=("MY_SECRET",)))
    st = b.wait(h, 30)
    assert st.exit_code == 7 and Path(h.data["log_path"]).read_text() == "***\n"
    h = b.submit(JobRequest(name="c", command='echo "$MY_SECRET"; sleep 60', secret_env=("MY_SECRET",)))
    time.sleep(0.5)
    b.cancel(h)
    assert b.status(h).state.value == "canceled" and Path(h.data["log_path"]).read_text() == "***\n"


def test_local_without_secrets_writes_directly(tmp_path):
    b = LocalBackend(log_dir=str(tmp_path / "ctl"))
    h = b.submit(JobRequest(name="n", command="echo plain; echo err >&2"))
    assert b.wait(h, 20).succeeded and b.logs(h) == "plain\nerr\n"


# -- slurm and brev: the job script's filter -----------------------------------------------------

def test_slurm_output_file_is_masked(printer, tmp_path, monkeypatch):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    sbatch = ('s="${@: -1}"; d=$(sed -n "s/^#SBATCH --chdir=//p" "$s"); '
              'o=$(sed -n "s/^#SBATCH --output=//p" "$s"); mkdir -p "$d" && cd "$d" && '
              'bash "$s" >> "$o" 2>&1; echo 77')
    for name, body in {"sbatch": sbatch, "sacct": "exit 1", "squeue": "exit 0", "scontrol": "exit 1"}.items():
        p = bindir / name
        p.write_text("#!/bin/bash\n" + body + "\n")
        p.chmod(p.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bindir}:/usr/bin:/bin")
    b = SlurmBackend(log_dir=str(tmp_path / "ctl"), status_source="scontrol")
    h = b.submit(JobRequest(name="s", argv=[sys.executable, str(printer)], results_dir=str(tmp_path / "res"),
                            secret_env=("MY_SECRET", "MY_OTHER"), timeout_s=60))
    text = Path(h.data["log_path"]).read_text()
    _check_masked(text)
    assert Path(h.data["control_dir"], "exitcode").read_text().strip() == "0"
    assert _on_disk(tmp_path, SECRET) == [] and _on_disk(tmp_path, OTHER) == []
    h = b.submit(JobRequest(name="f", command='echo "$MY_SECRET"; exit 5', secret_env=("MY_SECRET",)))
    assert Path(h.data["control_dir"], "exitcode").read_text().strip() == "5"  # the job's code, not awk's


def test_brev_job_log_is_masked(printer, tmp_path, monkeypatch):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    p = bindir / "brev"
    p.write_text('#!/bin/bash\nexec bash -c "$3"\n')
    p.chmod(p.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bindir}:{os.environ['PATH']}")
    b = BrevBackend(instance="box", workdir=str(tmp_path / "jobs"))
    h = b.submit(JobRequest(name="b", argv=[sys.executable, str(printer)], results_dir=str(tmp_path / "res"),
                            secret_env=("MY_SECRET", "MY_OTHER")))
    assert b.wait(h, 30).succeeded
    _check_masked(Path(h.data["control_dir"], "job.log").read_text())
    assert _on_disk(tmp_path, SECRET) == []


# -- workspace files and WandB ------------------------------------------------------------------

def test_workspace_writes_mask_registered_values(tmp_path, monkeypatch):
    from tao_automl.config import secrets
    from tao_automl.store.workspace import Workspace

    monkeypatch.setattr(secrets, "_MASK_NAMES", set())
    monkeypatch.setenv("MY_SECRET", SECRET)
    monkeypatch.setenv("MY_OTHER", OTHER)
    ws = Workspace(tmp_path / "ws")
    ws.write_json("before.json", {"msg": f"failed: {SECRET}"})
    assert SECRET in (tmp_path / "ws" / "before.json").read_text()  # nothing registered yet
    secrets.mask_env(["MY_SECRET", "MY_OTHER", "not a name"])
    ws.write_json("result.json", {"msg": f"failed: {SECRET}", OTHER: [OTHER]})
    ws.write_text("history.csv", f"t1,{SECRET},{OTHER}\n")
    text = (tmp_path / "ws" / "result.json").read_text() + (tmp_path / "ws" / "history.csv").read_text()
    assert SECRET not in text and OTHER not in text and '"quotes' not in text
    assert "failed: ***" in text and "t1,***,***" in text
    import json

    assert json.loads((tmp_path / "ws" / "result.json").read_text()) == {"msg": "failed: ***", "***": ["***"]}
    assert secrets.mask_obj({"a": [f"x{SECRET}"], "n": 1}) == {"a": ["x***"], "n": 1}


def test_masked_job_output_streams_line_by_line(tmp_path, monkeypatch):
    """The batch script of SLURM and Brev masks secret values through awk; with
    Debian's mawk a pipe is read in 4 KB blocks unless ``-W interactive``, so a
    running job's lines (its live metrics) reached the output file only at its end."""
    import subprocess

    from tao_automl.platforms._script import job_body

    monkeypatch.setenv("TAO_TEST_SECRET", "s3cr3t-value")
    req = JobRequest(name="stream", results_dir=str(tmp_path), secret_env=("TAO_TEST_SECRET",),
                     command='echo "epoch 1 token=$TAO_TEST_SECRET"; sleep 20')
    script = tmp_path / "job.sh"
    script.write_text("\n".join(job_body(req, str(tmp_path), 1.0)) + "\n")
    out = tmp_path / "job.log"
    with open(out, "w") as fh:
        proc = subprocess.Popen(["bash", str(script)], stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 5
        while "epoch 1" not in out.read_text() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert out.read_text() == "epoch 1 token=***\n"  # while the job still runs, masked
        assert proc.poll() is None
    finally:
        os.killpg(proc.pid, 9)
        proc.wait()
