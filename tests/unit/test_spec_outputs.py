"""Declared outputs (``actions.<a>.outputs`` in skill_info.yaml) are routed
into each job's own folder; a user URI stays as given; a shared local path
is refused; python_script jobs run in their job folder; baseline and final
evaluation jobs each get their own folder (real subprocesses, local backend)."""

from __future__ import annotations

import copy
import hashlib
import json
import os
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from tao_automl.errors import AutoMLError, SpecError
from tao_automl.execution.jobs import JobOptions, build_job_request
from tao_automl.skill import IOSpec, load_skill
from tao_automl.spec import SpecBuilder, SpecParamContext

REPO = Path(__file__).resolve().parents[2]
NV_SKILL = REPO / "tests" / "fixtures" / "nvidia_format_skill"


class FakeSkill:
    """Duck-typed SkillBundle: a template and an action with ``outputs``."""

    def __init__(self, template, outputs, *, spec_params=None, shorthand=None):
        self._template = template
        self.info = SimpleNamespace(
            name="fake", data_format="default", actions={"train": None}, data_sources={},
            spec_params={"train": spec_params or {}}, key_defaults={},
            spec_shorthand_keys=shorthand or {})
        self._action = SimpleNamespace(
            name="train", config_format="yaml", inputs={},
            outputs={k: IOSpec(type=v) for k, v in outputs.items()})

    def template(self, action):
        return copy.deepcopy(self._template)

    def action(self, name):
        if name != "train":
            raise AutoMLError(f"no action {name}")
        return self._action


def ctx(out: str = "/ws/trials/t1/1") -> SpecParamContext:
    return SpecParamContext(action="train", job_id="t1-1", output_dir=out)


def test_nvidia_format_empty_folder_output_is_the_job_folder():
    built = SpecBuilder(load_skill(NV_SKILL), "train").build(context=ctx())
    assert built.spec["results_dir"] == "/ws/trials/t1/1"
    assert built.origins["results_dir"] == "outputs"
    assert built.outputs == {"results_dir": "/ws/trials/t1/1"}
    assert built.spec["model"] == {"n_estimators": 8, "max_depth": 3, "random_state": 7}
    other = SpecBuilder(load_skill(NV_SKILL), "train").build(context=ctx("/ws/trials/t2/1"))
    assert other.spec["results_dir"] == "/ws/trials/t2/1"  # never shared between jobs


def test_folder_and_file_outputs_at_any_dotted_key():
    skill = FakeSkill(
        {"results_dir": "./results", "export": {"onnx_file": "/results/model.onnx"},
         "train": {"checkpoint_dir": "", "log": ""}},
        {"results_dir": "folder", "train.checkpoint_dir": "folder", "export.onnx_file": "file",
         "train.log": "file", "deep.new.dir": "folder"})
    spec = SpecBuilder(skill, "train").build(context=ctx("/j")).spec
    assert spec["results_dir"] == "/j"  # the first folder output: the job folder itself
    assert spec["train"]["checkpoint_dir"] == "/j/train.checkpoint_dir"
    assert spec["export"]["onnx_file"] == "/j/model.onnx"  # base name of the template's value
    assert spec["train"]["log"] == "/j/log"  # no name in the template: the key's last segment
    assert spec["deep"]["new"]["dir"] == "/j/deep.new.dir"  # missing parents are created


def test_values_already_in_the_job_folder_are_kept():
    skill = FakeSkill({"out": "", "results_dir": "", "onnx": ""},
                      {"out": "folder", "results_dir": "folder", "onnx": "file"},
                      spec_params={"results_dir": "output_dir", "onnx": "create_onnx_file"})
    built = SpecBuilder(skill, "train").build(context=ctx("/j"))
    # spec_params already put results_dir at the job folder: the other folder output gets a sub-folder
    assert built.spec == {"out": "/j/out", "results_dir": "/j", "onnx": "/j/model.onnx"}
    assert built.origins["results_dir"] == "spec_params" and built.origins["onnx"] == "spec_params"


def test_user_uri_output_stays_as_given():
    skill = load_skill(NV_SKILL)
    built = SpecBuilder(skill, "train").build(overrides={"results_dir": "s3://bucket/rf/run1"}, context=ctx())
    assert built.spec["results_dir"] == "s3://bucket/rf/run1"
    assert built.origins["results_dir"] == "overrides"
    assert any("kept as given" in n for n in built.notes)


@pytest.mark.parametrize("value", ["/data/shared-results", "./out", ""])
def test_user_local_output_path_is_refused(value):
    skill = FakeSkill({"results_dir": ""}, {"results_dir": "folder"}, shorthand={"out_dir": "results_dir"})
    with pytest.raises(SpecError) as info:
        SpecBuilder(skill, "train").build(overrides={"out_dir": value}, context=ctx())
    msg = str(info.value)
    assert "'out_dir'" in msg and "results_dir" in msg and repr(value) in msg  # the key as the user wrote it
    assert info.value.key == "out_dir"
    assert "URI" in msg  # what is expected instead


def test_other_output_types_and_missing_context_are_noted_not_routed():
    skill = FakeSkill({"results_dir": "", "url": "x"}, {"results_dir": "folder", "url": "uri"})
    built = SpecBuilder(skill, "train").build(context=ctx("/j"))
    assert built.spec == {"results_dir": "/j", "url": "x"}
    assert any("'url' has type 'uri'" in n for n in built.notes)
    bare = SpecBuilder(skill, "train").build()
    assert bare.spec["results_dir"] == ""
    assert any("declared outputs not routed: results_dir" in n for n in bare.notes)


def test_python_script_job_runs_in_its_own_folder(tmp_path):
    skill = load_skill(NV_SKILL)
    request = build_job_request(
        skill=skill, action="train", name="t", spec_path=str(tmp_path / "spec.json"),
        results_dir=str(tmp_path), backend=SimpleNamespace(python="/usr/bin/python3"),
        options=JobOptions(env={"A": "1"}))
    assert request.argv == ("/usr/bin/python3", str(NV_SKILL / "scripts" / "train.py"),
                            "--config", str(tmp_path / "spec.json"))
    assert request.cwd is None  # the backend's default: results_dir, the job's own folder
    assert request.env == {"A": "1", "PYTHONDONTWRITEBYTECODE": "1"}


def _hashes(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() or p.is_symlink()}


def test_baseline_and_final_evaluations_get_their_own_folders(tmp_path):
    from tao_automl.execution.evaluations import run_evaluation
    from tao_automl.platforms.local import LocalBackend
    from tao_automl.store.workspace import Workspace

    before = _hashes(NV_SKILL)
    skill = load_skill(NV_SKILL)
    prepared = SimpleNamespace(
        skill=skill, evaluate_action="evaluate", backend=LocalBackend(python=sys.executable),
        base_checkpoint=None, dataset_uris={}, job_options=JobOptions(), metric="accuracy",
        settings=SimpleNamespace(poll_interval_s=0.05, max_retries=2), overrides={"model.max_depth": 4}, objectives=())
    ws = Workspace(str(tmp_path / "ws"))
    job_root = ws.path("trials")
    evs = {kind: run_evaluation(kind=kind, prepared=prepared, ws=ws, job_root=job_root, checkpoint=None)
           for kind in ("baseline", "final")}
    folders = set()
    for kind, ev in evs.items():
        assert ev.status == "measured", ev.reason
        assert ev.metadata["source"] == "metrics.json"
        folder = Path(ev.record_path)
        folders.add(folder)
        assert folder.parent == Path(job_root) and folder.name == f"{kind}-eval"
        spec = json.loads((folder / "spec.json").read_text())
        assert spec["results_dir"] == str(folder) and spec["model"]["max_depth"] == 4
        metrics = json.loads((folder / "metrics.json").read_text())
        assert ev.metric_value == pytest.approx(metrics["accuracy"])
        notes = json.loads((folder / "evaluate_notes.txt").read_text())  # a relative write
        assert os.path.realpath(notes["cwd"]) == os.path.realpath(folder)
    assert len(folders) == 2
    assert _hashes(NV_SKILL) == before  # nothing written into (or added to) the skill folder


def test_metric_file_in_a_routed_sub_folder_is_read(tmp_path):
    """A second folder output is a sub-folder of the job folder: the metric
    readers list the job's files, so its metrics.json is found there."""
    from tao_automl.execution.jobs import job_files, watch_job
    from tao_automl.execution.metrics import MetricStream, extract_metric
    from tao_automl.platforms.base import JobRequest
    from tao_automl.platforms.local import LocalBackend

    backend = LocalBackend(python=sys.executable)
    code = ("import json, os; os.makedirs('train.eval_dir', exist_ok=True); "
            "json.dump({'accuracy': 0.875}, open('train.eval_dir/metrics.json', 'w'))")
    handle = backend.submit(JobRequest(name="sub", argv=[sys.executable, "-c", code], results_dir=str(tmp_path)))
    assert watch_job(backend, handle, stream=MetricStream("accuracy"), poll_s=0.05).status.succeeded

    def read(rel):
        return backend.read_artifact(handle, rel)

    assert "train.eval_dir/metrics.json" in job_files(backend, handle)
    res = extract_metric("accuracy", artifacts=read, artifact_paths=job_files(backend, handle))
    assert res.value == 0.875 and res.source == "metrics.json"
    assert extract_metric("accuracy", artifacts=read).value is None  # top-level names only
    # a listing that misses a top-level file never hides it
    (tmp_path / "metrics.json").write_text('{"accuracy": 0.5}')
    assert extract_metric("accuracy", artifacts=read, artifact_paths=[]).value == 0.5
