"""Issue 12 "Escape": session ids that leave the workspace, skill paths that
leave the skill folder, and environment variable names that would run as
shell in a generated job script are refused before anything is created.

The backends are called directly (no runner preflight in front of them), each
with a crafted name such as ``X;touch <marker>``: the submit must raise
SubmitError, the marker must not exist, and no job may have been created.
Values with ``$(...)``, backquotes and quotes must reach the job literally.
"""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

import pytest
import yaml

from tao_automl.errors import SettingsError, SkillError, SubmitError
from tao_automl.platforms import (
    BrevBackend,
    DockerBackend,
    JobRequest,
    KubernetesBackend,
    LocalBackend,
    SlurmBackend,
    _util,
)
from tao_automl.store.workspace import check_session_id

REPO = Path(__file__).resolve().parents[2]
TOY = REPO / "examples" / "toy_skill"
NASTY = "a $(echo INJECTED) `echo INJECTED` 'q' \"d\" ; echo INJECTED \\ $HOME"


# -- session ids ------------------------------------------------------------------------

@pytest.mark.parametrize("sid", ["automl-20261201-0001-ab12", "exp1", "A.b_c-9", "x" * 128])
def test_safe_session_ids_pass(sid):
    assert check_session_id(sid) == sid


@pytest.mark.parametrize("sid", ["../../x", "..", ".", "a/b", "/abs", "a\nb", "a\x00b", "", " x", "-x",
                                 ".hidden", "x" * 129, "a b", 7, ["x"]])
def test_unsafe_session_ids_refused(sid):
    with pytest.raises(SettingsError) as info:
        check_session_id(sid, key="automl_settings.experiment_name")
    assert "automl_settings.experiment_name" in str(info.value) and repr(sid) in str(info.value)


def test_settings_and_review_refuse_before_writing(tmp_path):
    from tao_automl.config.settings import AutoMLSettings, parse_settings
    from tao_automl.runner import AutoMLRunner

    with pytest.raises(SettingsError, match="automl_settings.session_id"):
        AutoMLSettings(session_id="../x")
    with pytest.raises(SettingsError, match="automl_settings.experiment_name"):
        parse_settings({"experiment_name": ".."})
    runner = AutoMLRunner(skill_dir=TOY, workspace_dir=tmp_path / "ws")
    for sid in ("../../escaped", "..", "ok\n"):
        with pytest.raises(SettingsError, match="session id"):
            runner.review(automl_settings={"session_id": sid})
    with pytest.raises(SettingsError, match="session id"):
        runner.run(resume=True, automl_settings={"session_id": "../../escaped"})
    assert not (tmp_path / "escaped").exists() and not (tmp_path / "ws").exists()


def test_plan_names_the_file(tmp_path):
    from tao_automl.cli.plan import load_plan

    plan = tmp_path / "plan.yaml"
    plan.write_text(yaml.safe_dump({"skill_dir": str(TOY), "automl_settings": {"session_id": "../up"}}))
    with pytest.raises(SettingsError) as info:
        load_plan(plan)
    assert str(plan) in str(info.value) and "'../up'" in str(info.value)


# -- skill paths ------------------------------------------------------------------------

def _skill(tmp_path: Path) -> Path:
    import shutil

    dst = tmp_path / "skill"
    shutil.copytree(TOY, dst)
    return dst


def _edit_info(skill: Path, fn) -> None:
    p = skill / "references" / "skill_info.yaml"
    data = yaml.safe_load(p.read_text())
    fn(data)
    p.write_text(yaml.safe_dump(data, sort_keys=False))


def _outside(tmp_path: Path) -> Path:
    out = tmp_path / "outside"
    out.mkdir(exist_ok=True)
    (out / "evil.yaml").write_text("train: {lr: 0.1}\n")
    (out / "evil.py").write_text("print('outside')\n")
    return out


@pytest.mark.parametrize(("key", "value"), [
    ("spec_templates.train", "../../outside/evil.yaml"),
    ("spec_templates.train", "ABS/evil.yaml"),
    ("actions.train.execution.script", "../outside/evil.py"),
    ("actions.train.execution.script", "ABS/evil.py"),
    ("actions.evaluate.execution.cwd", ".."),
])
def test_skill_paths_must_stay_inside(tmp_path, key, value):
    from tao_automl.skill import load_skill

    skill, out = _skill(tmp_path), _outside(tmp_path)
    value = value.replace("ABS", str(out))

    def set_(d):
        node = d
        parts = key.split(".")
        for part in parts[:-1]:
            node = node[part]
        node[parts[-1]] = value

    _edit_info(skill, set_)
    with pytest.raises(SkillError) as info:
        load_skill(skill)
    msg = str(info.value)
    assert "skill_info.yaml" in msg and key in msg and value in msg, msg


def test_symlinked_template_schema_and_sidecar_leading_out(tmp_path):
    from tao_automl.planning.preparation import load_sidecar
    from tao_automl.skill import load_skill

    skill, out = _skill(tmp_path), _outside(tmp_path)
    tpl = skill / "references" / "spec_template_train.yaml"
    tpl.unlink()
    tpl.symlink_to(out / "evil.yaml")
    with pytest.raises(SkillError, match="spec_templates.train"):
        load_skill(skill)

    skill2 = tmp_path / "s2"
    import shutil

    shutil.copytree(TOY, skill2)
    schema = skill2 / "schemas" / "train.schema.json"
    (out / "train.schema.json").write_text(schema.read_text())
    schema.unlink()
    schema.symlink_to(out / "train.schema.json")
    bundle = load_skill(skill2)
    with pytest.raises(SkillError, match="train.schema.json"):
        bundle.schema("train")
    side = skill2 / "references" / "automl.yaml"
    (out / "automl.yaml").write_text("metric: val_loss\n")
    side.symlink_to(out / "automl.yaml")
    with pytest.raises(SkillError, match="references/automl.yaml"):
        load_sidecar(bundle)


def test_manifest_schema_path_must_stay_inside(tmp_path):
    import json

    from tao_automl.skill import load_skill

    skill, out = _skill(tmp_path), _outside(tmp_path)
    (skill / "schemas" / "train.schema.json").rename(out / "train.schema.json")
    (skill / "schemas" / "manifest.json").write_text(
        json.dumps({"actions": {"train": {"path": "../../outside/train.schema.json"}}}))
    with pytest.raises(SkillError) as info:
        load_skill(skill).schema("train")
    assert "manifest.json" in str(info.value) and "actions.train.path" in str(info.value)
    manifest = skill / "schemas" / "manifest.json"
    manifest.rename(out / "manifest.json")
    manifest.symlink_to(out / "manifest.json")
    with pytest.raises(SkillError, match="schemas/manifest.json"):
        load_skill(skill).schema("train")


def test_inside_paths_still_work():
    from tao_automl.skill import load_skill

    b = load_skill(TOY)  # spec_templates: ../references/spec_template_train.yaml, cwd: .
    assert b.template_path("train").is_relative_to(TOY.resolve())
    assert b.template("train")


# -- environment variable names at the backend boundary ------------------------------------

def _crafted(marker: Path) -> list[dict]:
    bad = f"X;touch {marker}"
    return [{"env": {bad: "1"}}, {"env": {"A": "1", f"$(touch {marker})": "1"}},
            {"secret_env": (bad,)}, {"env": {"": "1"}}, {"env": {"9LIVES": "1"}},
            {"gpu_ids": (f"0;touch {marker}",)}]


def _assert_refused(submit, tmp_path: Path, created) -> None:
    marker = tmp_path / "pwned"
    for extra in _crafted(marker):
        with pytest.raises(SubmitError) as info:
            submit(JobRequest(name="t", results_dir=str(tmp_path / "res"), command="echo hi", **extra))
        msg = str(info.value)
        assert "POSIX name" in msg or "GPU id" in msg, msg
        if "secret_env" in extra:  # a secret_env entry may be the secret itself: not echoed
            assert "touch" not in msg
        else:
            assert "touch" in msg or "9LIVES" in msg or "''" in msg, msg
    time.sleep(0.2)
    assert not marker.exists()
    assert created() == 0, "a job was created for a refused request"


def test_local_refuses_crafted_names_and_passes_values_literally(tmp_path, monkeypatch):
    b = LocalBackend(log_dir=str(tmp_path / "ctl"))
    _assert_refused(b.submit, tmp_path, lambda: len(list((tmp_path / "ctl").glob("*"))) if
                    (tmp_path / "ctl").exists() else 0)
    monkeypatch.setenv("MY_SECRET", NASTY)
    h = b.submit(JobRequest(name="ok", results_dir=str(tmp_path / "res"), env={"PLAIN": NASTY},
                            secret_env=("MY_SECRET",),
                            command='printf "%s\\n%s\\n" "$PLAIN" "$MY_SECRET" > out.txt'))
    assert b.wait(h, 20).succeeded
    assert (tmp_path / "res" / "out.txt").read_text() == f"{NASTY}\n{NASTY}\n"


@pytest.fixture
def fake_sbatch(tmp_path, monkeypatch):
    """sbatch that really runs the batch script with bash (synchronously)."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    calls = tmp_path / "sbatch-calls"
    sbatch = (f'echo x >> {calls}; s="${{@: -1}}"; d=$(sed -n "s/^#SBATCH --chdir=//p" "$s"); '
              'o=$(sed -n "s/^#SBATCH --output=//p" "$s"); mkdir -p "$d" && cd "$d" && '
              'bash "$s" >> "$o" 2>&1; echo 77')
    for name, body in {"sbatch": sbatch,
                       "sacct": "exit 1", "squeue": "exit 0", "scontrol": "exit 1"}.items():
        p = bindir / name
        p.write_text("#!/bin/bash\n" + body + "\n")
        p.chmod(p.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bindir}:/usr/bin:/bin")
    return calls


def test_slurm_refuses_crafted_names_and_quotes_values(fake_sbatch, tmp_path, monkeypatch):
    b = SlurmBackend(log_dir=str(tmp_path / "ctl"), status_source="scontrol")
    _assert_refused(b.submit, tmp_path, lambda: len(fake_sbatch.read_text().splitlines())
                    if fake_sbatch.exists() else 0)
    assert not (tmp_path / "ctl").exists()
    monkeypatch.setenv("MY_SECRET", NASTY)
    h = b.submit(JobRequest(name="ok", results_dir=str(tmp_path / "res"), env={"PLAIN": NASTY},
                            secret_env=("MY_SECRET",),
                            command='printf "%s\\n%s\\n" "$PLAIN" "$MY_SECRET" > out.txt'))
    assert NASTY not in Path(h.data["script"]).read_text().replace(f"export PLAIN={_q(NASTY)}", "")
    assert (tmp_path / "res" / "out.txt").read_text() == f"{NASTY}\n{NASTY}\n"
    assert "INJECTED" not in Path(h.data["log_path"]).read_text()


def _q(s: str) -> str:
    import shlex

    return shlex.quote(s)


@pytest.fixture
def fake_brev(tmp_path, monkeypatch):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    calls = tmp_path / "brev-calls"
    p = bindir / "brev"
    p.write_text(f'#!/bin/bash\necho x >> {calls}\nexec bash -c "$3"\n')
    p.chmod(p.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bindir}:{os.environ['PATH']}")
    return calls


def test_brev_refuses_crafted_names_and_quotes_values(fake_brev, tmp_path):
    b = BrevBackend(instance="box", workdir=str(tmp_path / "jobs"))
    _assert_refused(b.submit, tmp_path, lambda: len(fake_brev.read_text().splitlines())
                    if fake_brev.exists() else 0)
    h = b.submit(JobRequest(name="ok", results_dir=str(tmp_path / "res"), env={"PLAIN": NASTY},
                            command='printf "%s\\n" "$PLAIN" > out.txt'))
    assert b.wait(h, 20).succeeded
    assert (tmp_path / "res" / "out.txt").read_text() == f"{NASTY}\n"


class _Recorder:
    def __init__(self):
        self.created = 0

    def __getattr__(self, name):  # any create/run call counts as a created job
        def call(*a, **kw):
            self.created += 1
            raise AssertionError(f"{name} called for a refused request")
        return call


def test_docker_and_kubernetes_refuse_crafted_names(tmp_path):
    rec = _Recorder()

    class Client:
        containers = rec

    d = DockerBackend(client=Client(), image="img")
    _assert_refused(d.submit, tmp_path, lambda: rec.created)
    batch, core = _Recorder(), _Recorder()
    k = KubernetesBackend(batch_api=batch, core_api=core, namespace="ml", image="img")
    _assert_refused(k.submit, tmp_path, lambda: batch.created + core.created)


def test_check_request_accepts_posix_names():
    _util.check_request(JobRequest(name="t", command="x", env={"_A1": "v", "PATH": "p"},
                                   secret_env=("TOKEN",), gpu_ids=(0, 1)), "local")
