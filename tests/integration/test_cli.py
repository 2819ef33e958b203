"""`python -m tao_automl` driven end to end on the local backend (subprocesses)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
TOY = REPO / "examples" / "toy_skill"


def cli(*args: str, cwd: Path | None = None, timeout: float = 240,
        env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    return subprocess.run([sys.executable, "-m", "tao_automl", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


def write_plan(folder: Path, name: str = "plan.yaml", **fields) -> Path:
    plan = {
        "skill_dir": os.path.relpath(TOY, folder),  # relative: resolved against the plan's folder
        "workspace_dir": "ws",
        "automl_algorithm": "random",
        "automl_settings": {"max_recommendations": 2, "max_concurrent": 2, "seed": 0, "baseline": False},
        "spec_overrides": {"train.num_epochs": 2},
    }
    plan.update(fields)
    path = folder / name
    path.write_text(yaml.safe_dump(plan))
    return path


@pytest.mark.parametrize("cmd", ["", "run", "review", "status", "report", "cancel", "audit"])
def test_help_is_complete(cmd):
    out = cli(*([cmd] if cmd else []), "--help")
    assert out.returncode == 0, out.stderr
    text = out.stdout
    assert "usage: tao-automl" in text
    if cmd in ("run", "review"):
        assert "PLAN.yaml" in text and "skill_dir (required)" in text and "platform_kwargs" in text
    if cmd in ("status", "report", "cancel", "audit"):
        assert "WORKSPACE" in text and "settings.json" in text
    if not cmd:
        for sub in ("run", "review", "status", "report", "cancel", "audit"):
            assert sub in text
        assert "130 interrupted" in text


def test_review_prints_text_yaml_and_json(tmp_path):
    plan = write_plan(tmp_path)
    text = cli("review", str(plan), cwd=REPO, env={"NO_COLOR": ""})
    assert text.returncode == 0, text.stderr
    out = text.stdout
    assert "\x1b" not in out  # not a terminal: plain text
    assert out.startswith("AutoML launch review: toy-mlp")
    for section in ("Launch", "Data", "Search", "Search space (6 parameters)", "Initial batch",
                    "Estimate", "Baseline", "Final evaluation", "no blockers"):
        assert section in out, section
    assert "random" in out and "val_loss (minimize)" in out and "python:3.11-slim" in out
    assert len(out.splitlines()) < 70  # one screen, not the 160-line YAML dump
    # one row per recommendation with only the searched values (no nested spec)
    assert "rec-000" in out and "results_dir" not in out
    row = next(ln for ln in out.splitlines() if ln.strip().startswith("train.lr "))
    assert "float" in row and "[0.0001, 1]" in row and "log" in row and "0.01" in row
    yml = cli("review", str(plan), "--format", "yaml")
    review = yaml.safe_load(yml.stdout)
    assert review["algorithm"] == "random" and review["metric"] == "val_loss"
    assert {p["name"] for p in review["search_space"]} >= {"train.lr", "model.hidden_size"}
    assert review["blockers"] == [] and "specs" in review["recommendations"][0]
    assert not (tmp_path / "ws").exists()  # review launches nothing, writes nothing
    for args in (("--json",), ("--format", "json")):
        js = cli("review", str(plan), *args)
        assert js.returncode == 0 and json.loads(js.stdout)["budget"]["max_recommendations"] == 2


def test_run_without_a_terminal_needs_yes_and_launches_nothing(tmp_path):
    plan = write_plan(tmp_path, automl_settings={"max_recommendations": 2, "baseline": "defaults"})
    out = cli("run", str(plan), cwd=REPO)  # stdin is not a TTY (subprocess.run without input)
    assert out.returncode == 2
    assert "--yes" in out.stderr and "no terminal to confirm the launch" in out.stderr
    assert str(plan) in out.stderr
    assert not (tmp_path / "ws").exists()  # not even the baseline job


def _run_with_terminal(plan: Path, answer: str, timeout: float = 240) -> tuple[int, str]:
    """``tao-automl run PLAN`` with a pseudo-terminal as stdin, answering the question."""
    import pty

    master, slave = pty.openpty()
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "NO_COLOR": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "tao_automl", "run", str(plan), "--quiet"], cwd=REPO,
                            env=env, stdin=slave, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    os.close(slave)
    os.write(master, answer.encode())
    try:
        out, _ = proc.communicate(timeout=timeout)
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
    return proc.returncode, out


def test_run_asks_after_the_baseline_and_no_launches_nothing_more(tmp_path):
    plan = write_plan(tmp_path, automl_settings={"max_recommendations": 2, "baseline": "defaults", "seed": 0})
    rc, out = _run_with_terminal(plan, "n\n")
    assert rc == 2, out
    assert "AutoML launch review" in out and "Launch 2 trial(s) on local" in out
    assert "not launched (answered no)" in out
    # the baseline ran before the question and its metric is in the review
    assert "measured" in out and "val_loss = " in out
    ws = tmp_path / "ws"
    assert [p.name for p in ws.iterdir()] == ["baselines"]  # no experiment, no trial


def test_run_yes_reuses_the_baseline_measured_for_the_review(tmp_path):
    plan = write_plan(tmp_path, automl_settings={"max_recommendations": 2, "max_concurrent": 2,
                                                  "baseline": "defaults", "seed": 0})
    rc, out = _run_with_terminal(plan, "y\n")
    assert rc == 0, out[-3000:]
    (exp,) = [p for p in (tmp_path / "ws").iterdir() if (p / "settings.json").exists()]
    (key,) = [p.name for p in (tmp_path / "ws" / "baselines").iterdir()]
    result = json.loads((exp / "result.json").read_text())
    b = result["baseline"]
    assert b["status"] == "measured" and b["source"] == "defaults"
    assert b["metadata"]["reused"] is True and b["metadata"]["key"] == key
    assert b["metadata"]["hyperparameters"]["train.lr"] == 0.01  # the schema default
    assert f"val_loss = {b['metric_value']:.4g}" in out  # the number shown before the question
    assert not (exp / "trials" / "baseline-defaults").exists()  # no second baseline job
    assert "baseline:  " in out and "(measured" in out
    # the library offers the same order; a changed spec is another baseline (no stale reuse)
    from tao_automl.runner import AutoMLRunner

    runner = AutoMLRunner(skill_dir=TOY, workspace_dir=tmp_path / "ws")
    same = runner.baseline(automl_settings={"max_recommendations": 2, "baseline": "defaults", "seed": 0},
                           spec_overrides={"train.num_epochs": 2})
    assert same["reused"] is True and same["key"] == key and same["metric_value"] == b["metric_value"]
    changed = runner.baseline(automl_settings={"max_recommendations": 2, "baseline": "defaults", "seed": 0},
                              spec_overrides={"train.num_epochs": 1})
    assert changed["reused"] is False and changed["key"] != key and changed["status"] == "measured"



def test_run_status_report_end_to_end(tmp_path):
    plan = write_plan(tmp_path)
    run = cli("run", str(plan), "--quiet", "--yes", cwd=REPO)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "trials: 2 succeeded, 0 failed, 2 total" in run.stdout
    assert run.stdout.index("AutoML launch review") < run.stdout.index("AutoML session")  # review first
    (exp,) = [p for p in (tmp_path / "ws").iterdir() if (p / "settings.json").exists()]
    result = json.loads((exp / "result.json").read_text())
    assert result["progress"]["total"] == 2
    assert json.loads((exp / "settings.json").read_text())["platform_kwargs"] == {}
    assert {p.name for p in (exp / "plots").glob("*.png")} >= {"learning_curves.png", "optimization_history.png",
                                                               "parallel_coordinates.png", "slice.png"}

    status = cli("status", str(tmp_path / "ws"))  # a workspace_dir: the newest experiment
    assert status.returncode == 0, status.stderr
    first = status.stdout.splitlines()[0]
    assert first.startswith(f"{exp.name} [finished] | trials 2/2 done | 2 ok")
    for t in result["history"]:
        assert t["rec_id"] in status.stdout and str(t["job_id"]) in status.stdout
    js = cli("status", str(exp), "--json")
    assert json.loads(js.stdout)["finished"] is True

    for png in (exp / "plots").glob("*.png"):
        png.unlink()
    report = cli("report", str(exp))
    assert report.returncode == 0, report.stderr
    assert f"AutoML session {exp.name}" in report.stdout and "all trials:" in report.stdout
    assert len(list((exp / "plots").glob("*.png"))) >= 3
    assert "plots:" in report.stdout

    html = cli("report", str(exp), "--html", "--no-plots")
    assert html.returncode == 0, html.stderr
    page = (exp / "report.html").read_text()
    assert str(exp / "report.html") in html.stdout
    assert page.count("Plotly.newPlot(") >= 3 and "<script src=" not in page  # plotly.js inline
    assert "AutoML launch review: toy-mlp" in page  # the review.json of the run

    again = cli("cancel", str(exp))
    assert again.returncode == 0 and "already finished" in again.stdout


def test_cancel_stops_a_running_experiment(tmp_path):
    plan = write_plan(tmp_path, automl_settings={"max_recommendations": 6, "max_concurrent": 2, "seed": 0,
                                                  "baseline": False},
                      spec_overrides={"train.num_epochs": 60, "train.epoch_sleep_s": 0.5})
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "tao_automl", "run", str(plan), "--yes"], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        ledger_seen = None
        deadline = time.time() + 150
        while time.time() < deadline and ledger_seen is None:
            for exp in (tmp_path / "ws").glob("*/ledger"):
                if any(p.glob("*-epoch-*.json") for p in exp.iterdir()):
                    ledger_seen = exp.parent
            time.sleep(1)
        assert ledger_seen is not None, "no trial reached its first epoch"
        out = cli("cancel", str(ledger_seen))
        assert out.returncode == 0, out.stderr
        assert "cancel requested" in out.stdout
        assert out.stdout.count(": canceled") >= 1
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, stderr[-2000:]
    assert "stopped early: interrupted by tao-automl cancel" in stdout
    result = json.loads((ledger_seen / "result.json").read_text())
    assert result["progress"]["total"] < 6  # no new trials after the cancel
    assert result["final_evaluation"]["status"] == "skipped"
    assert all(t["status"] in ("failed", "stopped") for t in result["history"])
    # the live table was shown (not --quiet) on stderr, plain text when not a TTY
    # (Ray's own log lines about failed trial actors may carry colour codes)
    ours = [ln for ln in stderr.splitlines() if " | trials " in ln or ln.startswith("trial  ")]
    assert ours and not any("\x1b" in ln for ln in ours)


def test_bad_plan_exits_2_with_a_clear_message(tmp_path):
    plan = write_plan(tmp_path, automl_algoritm="random")
    out = cli("run", str(plan))
    assert out.returncode == 2
    err = out.stderr.strip()
    assert err.count("\n") == 0, err
    assert "unknown plan key" in err and "'automl_algoritm'" in err
    assert "did you mean 'automl_algorithm'?" in err and str(plan) in err

    bad_type = write_plan(tmp_path, "t.yaml", spec_overrides=["train.lr=1"])
    out = cli("review", str(bad_type))
    assert out.returncode == 2 and "wrong type in plan" in out.stderr and "spec_overrides" in out.stderr

    bad_setting = write_plan(tmp_path, "s.yaml", automl_settings={"max_recomendations": 2})
    out = cli("review", str(bad_setting))
    assert out.returncode == 2 and "did you mean 'max_recommendations'" in out.stderr

    missing = cli("run", str(tmp_path / "nope.yaml"))
    assert missing.returncode == 2 and "cannot read plan" in missing.stderr

    no_skill = cli("review", str(write_plan(tmp_path, "n.yaml", skill_dir="does/not/exist")))
    assert no_skill.returncode == 2 and "skill_info.yaml" in no_skill.stderr

    not_exp = cli("status", str(tmp_path))
    assert not_exp.returncode == 2 and "not an AutoML experiment folder" in not_exp.stderr


def test_non_utf8_and_alias_bomb_plans_exit_2(tmp_path):
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"skill_dir: x\nworkspace_dir: \xff\xfe\n")
    out = cli("review", str(binary), timeout=60)
    assert out.returncode == 2, out.stderr
    assert "not UTF-8" in out.stderr and str(binary) in out.stderr and "Traceback" not in out.stderr

    bomb = tmp_path / "bomb.yaml"
    levels = [f"l{i}" for i in range(9)]
    bomb.write_text(f"{levels[0]}: &{levels[0]} [{', '.join(['x'] * 9)}]\n" + "".join(
        f"{b}: &{b} [{', '.join(['*' + a] * 9)}]\n" for a, b in zip(levels, levels[1:], strict=False)))
    t0 = time.monotonic()
    out = cli("review", str(bomb), timeout=60)
    assert out.returncode == 2, out.stderr
    assert "alias bomb" in out.stderr and str(bomb) in out.stderr
    assert time.monotonic() - t0 < 30


EXAMPLE_PLANS = sorted((REPO / "examples" / "plans").glob("*.yaml")) + [REPO / "examples" / "quickstart.yaml"]


@pytest.mark.parametrize("plan", EXAMPLE_PLANS, ids=lambda p: p.name)
def test_example_plans_review_cleanly(plan):
    out = cli("review", str(plan), "--json", cwd=REPO / "tests")  # paths resolve against the plan, not cwd
    assert out.returncode == 0, out.stderr
    review = json.loads(out.stdout)
    assert review["blockers"] == []
    raw = yaml.safe_load(plan.read_text())
    metric = (raw.get("automl_settings") or {}).get("metric")
    if metric:
        assert review["metric"] == metric
    from tao_automl.spec import get_path

    spec = review["recommendations"][0]["specs"]
    shorthand = {"num_epochs": "train.num_epochs"}
    for key, value in (raw.get("spec_overrides") or {}).items():
        assert get_path(spec, shorthand.get(key, key)) == value, key  # the seed's required overrides


def test_status_watch_follows_until_ctrl_c_exits_0(tmp_path):
    import signal

    exp = tmp_path / "ws" / "automl-x"
    exp.mkdir(parents=True)
    (exp / "settings.json").write_text(json.dumps({"created": time.time(), "metric": "val_loss",
                                                   "settings": {"max_recommendations": 2}}))
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "tao_automl", "status", str(exp), "--watch", "0.2"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(4)
    assert proc.poll() is None  # still following a run that has not ended
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "automl-x [running]" in out and "stopped watching" in err
    bounded = cli("status", str(exp), "--watch", "0.2", "--timeout", "1")
    assert bounded.returncode == 0 and "stopped watching after 1 s" in bounded.stderr
    (exp / "result.json").write_text("{}")
    done = cli("status", str(exp), "--watch")
    assert done.returncode == 0 and "automl-x [finished]" in done.stdout
