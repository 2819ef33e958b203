"""spec_params functions: outputs, checkpoints through a provider, key references."""

from __future__ import annotations

import os

import pytest

from tao_automl.errors import SpecError
from tao_automl.spec.spec_params import (
    CheckpointProvider,
    SpecParamContext,
    is_function_name,
    resolve_spec_params,
    resolve_spec_params_full,
)


class FakeProvider:
    def __init__(self, **table):
        self.table = table
        self.calls: list[str] = []

    def resolve(self, kind):
        self.calls.append(kind)
        return self.table.get(kind)


def test_provider_satisfies_protocol():
    assert isinstance(FakeProvider(), CheckpointProvider)


def test_output_file_helpers():
    ctx = SpecParamContext(action="export", output_dir="s3://b/run/job1/")
    params = {
        "results_dir": "output_dir",
        "export.onnx_file": "create_onnx_file",
        "gen.engine": "create_engine_file",
        "gen.cal": "create_cal_cache",
        "x.pth": "create_pth_file",
        "inference.output_file": "create_inference_result_file_reid",
        "inference.label_dump_path": "create_inference_result_file_mal",
        "evaluate.output_cmc_curve_plot": "create_evaluate_cmc_plot_reid",
        "evaluate.output_sampled_matches_plot": "create_evaluate_matches_plot_reid",
        "evaluate.other": "create_evaluate_roc_reid",
    }
    out = resolve_spec_params(params, ctx)
    base = "s3://b/run/job1"
    assert out == {
        "results_dir": "s3://b/run/job1/",
        "export.onnx_file": f"{base}/model.onnx",
        "gen.engine": f"{base}/model.engine",
        "gen.cal": f"{base}/cal.bin",
        "x.pth": f"{base}/model.pth",
        "inference.output_file": f"{base}/inference_results.json",
        "inference.label_dump_path": f"{base}/inference_results.json",
        "evaluate.output_cmc_curve_plot": f"{base}/cmc_curve.png",
        "evaluate.output_sampled_matches_plot": f"{base}/sampled_matches.png",
        "evaluate.other": f"{base}/roc.png",
    }


def test_output_dir_missing_is_reported():
    notes, missing = [], []
    out = resolve_spec_params({"results_dir": "output_dir", "e.onnx": "create_onnx_file"},
                              SpecParamContext(), notes=notes, missing=missing)
    assert out == {} and missing == ["results_dir", "e.onnx"] and notes


def test_literals_pass_through():
    params = {"a": 3, "b": "sft", "c": [1, 2], "d": None, "e": "answer"}
    assert resolve_spec_params(params, SpecParamContext()) == params


@pytest.mark.parametrize("name", ["create_something", "parent_model_file", "ptm_foo",
                                  "resume_model_x"])
def test_unknown_function_like_names_raise(name):
    with pytest.raises(SpecError) as exc:
        resolve_spec_params({"k.x": name}, SpecParamContext(output_dir="/o"))
    assert "k.x" in str(exc.value) and name in str(exc.value)


def test_is_function_name():
    assert is_function_name("create_inference_result_file_reid")
    assert is_function_name("create_evaluate_cmc_plot_reid")
    assert not is_function_name("create_evaluate_cmc_plot")
    assert not is_function_name("sft")


def test_parent_model_explicit_beats_provider():
    prov = FakeProvider(parent_model="/prov/m.pth", parent_model_folder="/prov")
    ctx = SpecParamContext(parent_checkpoint="/explicit/m.pth", checkpoint_resolver=prov)
    out = resolve_spec_params({"evaluate.checkpoint": "parent_model",
                               "model.model_name": "parent_model_folder"}, ctx)
    assert out == {"evaluate.checkpoint": "/explicit/m.pth", "model.model_name": "/prov"}
    assert prov.calls == ["parent_model_folder"]


def test_parent_model_missing_is_mandatory():
    res = resolve_spec_params_full({"evaluate.checkpoint": "parent_model"},
                                   SpecParamContext(checkpoint_resolver=FakeProvider()))
    assert res.values == {} and res.missing == ["evaluate.checkpoint"]


def test_resume_and_ptm_rules():
    params = {"train.resume_training_checkpoint_path": "resume_model",
              "model.pretrained_model_path": "ptm_if_no_resume_model"}
    fresh = resolve_spec_params_full(params, SpecParamContext(ptm="/ptm.pth"))
    assert fresh.values == {"model.pretrained_model_path": "/ptm.pth"} and fresh.missing == []
    resumed = resolve_spec_params_full(
        params, SpecParamContext(ptm="/ptm.pth",
                                 checkpoint_resolver=FakeProvider(resume_model="/r/e3.pth")))
    assert resumed.values == {"train.resume_training_checkpoint_path": "/r/e3.pth"}
    none = resolve_spec_params_full(params, SpecParamContext())
    assert none.values == {} and none.missing == []  # both optional: template values kept
    assert resolve_spec_params({"p": "ptm"}, SpecParamContext(
        checkpoint_resolver=FakeProvider(ptm="/prov/ptm"))) == {"p": "/prov/ptm"}


def test_parent_model_or_ptm():
    params = {"m": "parent_model_or_ptm"}
    assert resolve_spec_params(params, SpecParamContext(parent_checkpoint="/p", ptm="/t")) == {
        "m": "/p"}
    assert resolve_spec_params(params, SpecParamContext(ptm="/t")) == {"m": "/t"}
    assert resolve_spec_params(params, SpecParamContext()) == {}


def test_key_is_an_env_reference_never_a_value(monkeypatch):
    monkeypatch.setenv("MY_TAO_KEY", "super-secret-value")
    res = resolve_spec_params_full({"encryption_key": "key"},
                                   SpecParamContext(encryption_key_env="MY_TAO_KEY"))
    assert res.values == {"encryption_key": "${oc.env:MY_TAO_KEY}"}
    assert "super-secret-value" not in repr(res)
    assert os.environ["MY_TAO_KEY"] == "super-secret-value"
    plain = resolve_spec_params_full({"encryption_key": "key"}, SpecParamContext())
    assert plain.values == {} and plain.missing == []  # template value kept


def test_keys_are_canonicalised_and_bad_keys_raise():
    assert resolve_spec_params({'a["b"]': 1}, SpecParamContext()) == {"a.b": 1}
    with pytest.raises(SpecError):
        resolve_spec_params({"a..b": 1}, SpecParamContext())
