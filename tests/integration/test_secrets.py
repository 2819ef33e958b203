"""Secrets never land on disk (issue 7).

A secret value is planted in the environment of a run and referenced from a
spec override marked ``secret("TAO_TEST_SECRET")``.  A real search runs
(toy skill wrapped by a train script that checks the secret arrived and
writes its SHA-256), with WandB offline.  Then every file under the
workspace, the WandB offline folder and the driver's own output is searched
byte-wise for the value: 0 hits; and every trial's job proves it received
exactly that value.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
TOY = REPO / "examples" / "toy_skill"
SECRET_NAME = "TAO_TEST_SECRET"
SECRET_VALUE = "sEcReT-1234-6f1d0c9a-planted-by-test_secrets"

WRAPPER = textwrap.dedent('''\
    """Checks the secret reached the job, records its hash, then trains the toy model."""
    import hashlib, json, os, runpy, sys
    import yaml

    cfg = sys.argv[sys.argv.index("--config") + 1]
    spec = yaml.safe_load(open(cfg))
    ref = spec["train"]["api_key"]
    prefix = "${oc.env:"
    if not (isinstance(ref, str) and ref.startswith(prefix) and ref.endswith("}")):
        sys.exit("spec does not hold an env reference for train.api_key")
    name = ref[len(prefix):-1]
    value = os.environ.get(name)  # what OmegaConf's oc.env resolver does
    if not value:
        sys.exit(f"secret env var {name} did not reach the job")
    out = spec.get("results_dir") or "."
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "secret_check.json"), "w") as fh:
        json.dump({"name": name, "sha256": hashlib.sha256(value.encode()).hexdigest()}, fh)
    here = os.path.dirname(os.path.abspath(__file__))
    sys.argv = [os.path.join(here, "train.py")] + sys.argv[1:]
    runpy.run_path(sys.argv[0], run_name="__main__")
''')

DRIVER = textwrap.dedent('''\
    import json, sys
    from tao_automl import secret
    from tao_automl.runner import AutoMLRunner

    skill, ws, wandb_dir = sys.argv[1:4]
    runner = AutoMLRunner(skill_dir=skill, workspace_dir=ws)
    result = runner.run(
        automl_algorithm="random",
        automl_settings={"max_recommendations": 2, "seed": 0, "session_id": "secret-run",
                         "wandb": {"mode": "offline", "dir": wandb_dir, "project": "tao-secret-test"}},
        spec_overrides={"train.num_epochs": 2, "train.api_key": secret("TAO_TEST_SECRET")},
    )
    print("RESULT", json.dumps({"completed": result["progress"]["completed"],
                                "workspace": result["workspace"]}))
''')


def _secret_skill(root: Path) -> Path:
    skill = root / "secret_skill"
    shutil.copytree(TOY, skill)
    (skill / "scripts" / "secret_wrapper.py").write_text(WRAPPER)
    info_path = skill / "references" / "skill_info.yaml"
    info = yaml.safe_load(info_path.read_text())
    info["actions"]["train"]["execution"]["script"] = "scripts/secret_wrapper.py"
    info_path.write_text(yaml.safe_dump(info, sort_keys=False))
    return skill


def _hits(root: Path, needle: bytes) -> list[str]:
    """Every file under root (binary included) containing needle."""
    out = []
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            p = Path(dirpath, name)
            if p.is_symlink() and not p.exists():
                continue
            try:
                if needle in p.read_bytes():
                    out.append(str(p))
            except (IsADirectoryError, PermissionError):
                continue
    return out


@pytest.mark.timeout(300)
def test_secret_override_never_written(tmp_path: Path) -> None:
    skill = _secret_skill(tmp_path)
    ws = tmp_path / "ws"
    wandb_dir = tmp_path / "wandb"
    wandb_dir.mkdir()
    env = {**os.environ, SECRET_NAME: SECRET_VALUE, "WANDB_MODE": "offline", "WANDB_DIR": str(wandb_dir),
           "WANDB_SILENT": "true", "RAY_USAGE_STATS_ENABLED": "0", "PYTHONPATH": str(REPO)}
    env.pop("WANDB_API_KEY", None)
    proc = subprocess.run([sys.executable, "-c", DRIVER, str(skill), str(ws), str(wandb_dir)],
                          cwd=tmp_path, env=env, capture_output=True, timeout=280)
    out = proc.stdout.decode(errors="replace") + proc.stderr.decode(errors="replace")
    assert proc.returncode == 0, out[-4000:]
    summary = json.loads(out.split("RESULT ", 1)[1].splitlines()[0])
    assert summary["completed"] == 2

    needle = SECRET_VALUE.encode()
    # 0 hits: workspace (specs, ledger, Ray state, result, job logs), WandB, driver output.
    assert _hits(ws, needle) == []
    assert list(wandb_dir.rglob("*.wandb")), "WandB wrote no offline run to search"
    assert _hits(wandb_dir, needle) == []
    assert needle not in proc.stdout and needle not in proc.stderr
    assert _hits(tmp_path, needle) == []

    # The jobs really received it: each trial's job hashed exactly the planted value.
    session = ws / "secret-run"
    # (an early-start trial's folder links to the early job's: count each file once)
    checks = sorted({c.resolve() for c in session.glob("trials/*/*/secret_check.json")})
    assert len(checks) == 2, checks
    want = hashlib.sha256(SECRET_VALUE.encode()).hexdigest()
    for c in checks:
        assert json.loads(c.read_text()) == {"name": SECRET_NAME, "sha256": want}
        spec_text = (c.parent / "spec.yaml").read_text()
        assert "${oc.env:TAO_TEST_SECRET}" in spec_text  # the reference, never the value
    # ...through the platform's secret_env (names only in the job handle).
    handles = list(session.glob("trials/*/*/.tao_automl/*/handle.json"))
    assert handles and all(SECRET_NAME in json.loads(h.read_text())["data"]["secret_env"] for h in handles)
    settings = json.loads((session / "settings.json").read_text())
    assert settings["overrides"]["train.api_key"] == "${oc.env:TAO_TEST_SECRET}"


def test_secret_ref_in_spec_builder() -> None:
    """SpecBuilder alone writes the reference for a SecretRef override."""
    from tao_automl import SpecBuilder, load_skill, secret

    built = SpecBuilder(load_skill(TOY), "train").build(
        overrides={"train.api_key": secret(SECRET_NAME), "lr": 0.05})
    assert built.spec["train"]["api_key"] == "${oc.env:TAO_TEST_SECRET}"
    assert built.spec["train"]["lr"] == 0.05
    assert repr(secret(SECRET_NAME)) == "secret('TAO_TEST_SECRET')"


def test_secret_names_join_secret_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """review(): the job's secret_env lists the name; an unset secret is a blocker
    naming the variable (run() raises CredentialError, see test_bad_inputs)."""
    from tao_automl import secret
    from tao_automl.runner import AutoMLRunner

    monkeypatch.setenv(SECRET_NAME, SECRET_VALUE)
    runner = AutoMLRunner(skill_dir=TOY, workspace_dir=tmp_path / "ws")
    kwargs = dict(automl_settings={"max_recommendations": 2, "seed": 0},
                  spec_overrides={"train.api_key": secret(SECRET_NAME), "train.num_epochs": 2},
                  secret_env=["OTHER_NAME"])
    review = runner.review(**kwargs)
    text = json.dumps(review, default=str)
    assert SECRET_VALUE not in text
    assert "${oc.env:TAO_TEST_SECRET}" in text
    from tao_automl.planning.preparation import prepare

    prepared = prepare(skill=runner.skill, action="train", platform_sdk=None, automl_algorithm=None,
                       automl_settings=kwargs["automl_settings"], spec_overrides=kwargs["spec_overrides"],
                       automl_hyperparameters=None, custom_param_ranges=None, train_dataset_uri=None,
                       eval_dataset_uri=None, dataset_uris=None, base_checkpoint=None,
                       platform_kwargs={"secret_env": ["OTHER_NAME"]})
    assert prepared.job_options.secret_env == ("OTHER_NAME", SECRET_NAME)
    monkeypatch.delenv(SECRET_NAME)
    blocked = runner.review(**kwargs)
    assert any(SECRET_NAME in b for b in blocked["blockers"])


def test_saved_references_still_forward_their_names() -> None:
    """A resumed experiment's overrides hold ${oc.env:NAME} strings (settings.json):
    the names still join secret_env; other strings are left alone."""
    from tao_automl import secret
    from tao_automl.config.secrets import replace_secrets, secret_names

    saved = replace_secrets({"train.api_key": secret(SECRET_NAME), "x": ["${oc.env:OTHER}", "plain ${oc.env:NO}"]})
    assert saved == {"train.api_key": "${oc.env:TAO_TEST_SECRET}", "x": ["${oc.env:OTHER}", "plain ${oc.env:NO}"]}
    assert secret_names(saved) == [SECRET_NAME, "OTHER"]


# -- a job that prints its secrets (issue 12): masked as the log is written ------------------

SECOND_NAME = "TAO_TEST_SECRET_ENV"
SECOND_VALUE = "zz-plat-secret-9f8e7d6c-from-secret_env"

PRINTER = textwrap.dedent('''\
    """Prints both secrets every way a TAO job might (resolved config, errors), then runs the real script."""
    import os, runpy, sys, time

    target = sys.argv.pop(1)
    for name in ("TAO_TEST_SECRET", "TAO_TEST_SECRET_ENV"):
        v = os.environ[name]
        print(v, flush=True)                                  # a whole line
        print(f"api_key: {v}  # resolved", flush=True)        # mid-line
        sys.stdout.write("split " + v[:7]); sys.stdout.flush(); time.sleep(0.3)
        sys.stdout.write(v[7:] + " joined\\n"); sys.stdout.flush()   # across two writes
        print(f"stderr: {v}", file=sys.stderr, flush=True)   # stderr
        os.write(1, ("raw-" + v + "\\n").encode())            # unbuffered fd write
    here = os.path.dirname(os.path.abspath(__file__))
    sys.argv = [os.path.join(here, target)] + sys.argv[1:]
    runpy.run_path(sys.argv[0], run_name="__main__")
''')

PRINTING_DRIVER = textwrap.dedent('''\
    import json, sys
    from tao_automl import secret
    from tao_automl.runner import AutoMLRunner

    skill, ws, wandb_dir = sys.argv[1:4]
    runner = AutoMLRunner(skill_dir=skill, workspace_dir=ws)
    result = runner.run(
        automl_algorithm="random",
        automl_settings={"max_recommendations": 2, "seed": 0, "session_id": "printing",
                         "wandb": {"mode": "offline", "dir": wandb_dir, "project": "tao-secret-print"}},
        spec_overrides={"train.num_epochs": 2, "train.api_key": secret("TAO_TEST_SECRET")},
        secret_env=["TAO_TEST_SECRET_ENV"],
    )
    print("RESULT", json.dumps({"completed": result["progress"]["completed"],
                                "baseline": result["baseline"] is not None,
                                "final": result["final_evaluation"] is not None}))
''')


@pytest.mark.timeout(300)
def test_job_printing_secrets_leaves_only_masks_on_disk(tmp_path: Path) -> None:
    skill = tmp_path / "printing_skill"
    shutil.copytree(TOY, skill)
    (skill / "scripts" / "print_secrets.py").write_text(PRINTER)
    info_path = skill / "references" / "skill_info.yaml"
    info = yaml.safe_load(info_path.read_text())
    for action, script in (("train", "train.py"), ("evaluate", "evaluate.py")):
        ex = info["actions"][action]["execution"]
        ex["script"], ex["args"] = "scripts/print_secrets.py", [script, *ex["args"]]
    info_path.write_text(yaml.safe_dump(info, sort_keys=False))
    ws, wandb_dir = tmp_path / "ws", tmp_path / "wandb"
    wandb_dir.mkdir()
    env = {**os.environ, SECRET_NAME: SECRET_VALUE, SECOND_NAME: SECOND_VALUE, "WANDB_MODE": "offline",
           "WANDB_DIR": str(wandb_dir), "WANDB_SILENT": "true", "RAY_USAGE_STATS_ENABLED": "0",
           "PYTHONPATH": str(REPO)}
    env.pop("WANDB_API_KEY", None)
    proc = subprocess.run([sys.executable, "-c", PRINTING_DRIVER, str(skill), str(ws), str(wandb_dir)],
                          cwd=tmp_path, env=env, capture_output=True, timeout=280)
    out = proc.stdout.decode(errors="replace") + proc.stderr.decode(errors="replace")
    assert proc.returncode == 0, out[-4000:]
    summary = json.loads(out.split("RESULT ", 1)[1].splitlines()[0])
    assert summary == {"completed": 2, "baseline": True, "final": True}

    logs = sorted(ws.rglob("job.log"))
    trial_logs = [p for p in logs if "/trials/" in str(p)]  # evaluation jobs run under trials/<kind>-eval
    eval_logs = [p for p in logs if "-eval/" in str(p)]
    assert len(trial_logs) - len(eval_logs) >= 2 and eval_logs, logs  # 2 trials and the final evaluation
    for log in logs:  # every way of printing shows the mask, never the value
        text = log.read_text()
        assert text.count("***") >= 10, (log, text[:2000])
        for line in ("api_key: ***  # resolved", "split *** joined", "stderr: ***", "raw-***"):
            assert line in text, (log, line, text[:2000])
    for value in (SECRET_VALUE, SECOND_VALUE):
        needle = value.encode()
        assert _hits(ws, needle) == [], value
        assert list(wandb_dir.rglob("*.wandb"))
        assert _hits(wandb_dir, needle) == [], value
        assert _hits(tmp_path, needle) == [], value
