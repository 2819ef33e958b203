"""nvidia-tao-automl 7.2.0 compatibility: every automl_settings key it accepts
has a meaning here or a clear "not available yet" error; the Recommendation
the callbacks receive; run(execution=...) and automl_range_override checks;
the constructor's keywords.  (End-to-end runs: tests/integration/test_nvidia_compat_e2e.py.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from tao_automl.config.compat import NOT_AVAILABLE, PEER_KEYS
from tao_automl.config.secrets import SecretRef
from tao_automl.config.settings import SETTINGS_ALIASES, parse_settings
from tao_automl.errors import SettingsError
from tao_automl.execution.recommendation import Recommendation
from tao_automl.reporting.results import TrialResult
from tao_automl.runner import AutoMLRunner, _compat_args
from tao_automl.skill.compat import apply_execution

TOY = Path(__file__).resolve().parents[2] / "examples" / "toy_skill"

# Copied from nvidia-tao-automl 7.2.0 (tao_automl/runner.py: KNOWN_AUTOML_SETTINGS
# and _SAMPLE_COUNT_KEYS) as data: never read from that package at test time.
PEER_KNOWN = [
    "algorithm", "allow_unsafe_effective_batch", "api_key", "automl_checkpoint_retention_strategy",
    "automl_crossover_prob", "automl_delete_intermediate_ckpt", "automl_early_stop_threshold",
    "automl_eval_interval", "automl_kde_samples", "automl_max_concurrent", "automl_max_epochs",
    "automl_max_experiments", "automl_max_generations", "automl_max_recommendations",
    "automl_max_trials", "automl_min_early_stop_epochs", "automl_min_points_in_model",
    "automl_min_top_configs", "automl_mutation_factor", "automl_perturbation_factor",
    "automl_population_size", "automl_range_override", "automl_reduction_factor",
    "automl_retain_failed_artifacts", "automl_top_n_percent", "base_url", "baseline_metric",
    "baseline_record_path", "direction", "enable_llm_range_narrowing", "epoch_multiplier",
    "evaluation_records_dir", "evolvable_text_parameters", "experiment_id", "final_evaluation",
    "final_evaluation_metric", "final_evaluation_record_path", "hybrid_enable_llm_range_narrowing",
    "include_latency", "latency_direction", "latency_metric", "latency_objective", "latency_scale",
    "latency_weight", "llm_analysis_interval", "llm_api_key", "llm_endpoint", "llm_max_tokens",
    "llm_model", "llm_temperature", "metric", "metric_scale", "metric_weight", "model",
    "multi_objective", "objectives", "research_program", "reuse_best_metric_for_final_evaluation",
    "run_baseline", "run_final_evaluation", "session_id",
    # _SAMPLE_COUNT_KEYS
    "train_sample_count", "training_sample_count", "num_train_samples", "train_samples",
    "dataset_sample_count", "dataset_size", "samples_per_epoch", "custom.train_dataset.sample_count",
    "custom.train_dataset.num_samples", "custom.train_dataset.size", "dataset.train_sample_count",
    "dataset.num_train_samples", "data.train_sample_count", "train.num_samples",
]

# key -> (a value of the peer's type, the field it sets here and the value expected)
MAPPED = {
    "algorithm": ("random", "algorithm", "random"),
    "allow_unsafe_effective_batch": (True, "allow_unsafe_effective_batch", True),
    "automl_eval_interval": (3, "perturbation_interval", 3),
    "automl_kde_samples": (32, "kde_samples", 32),
    "automl_max_concurrent": (3, "max_concurrent", 3),
    "automl_max_epochs": (9, "max_epochs", 9),
    "automl_max_generations": (4, "max_epochs", 40),  # 4 generations x its default interval 10
    "automl_max_recommendations": (7, "max_recommendations", 7),
    "research_program": ("lower val_loss by tuning the optimiser", "research_program",
                         "lower val_loss by tuning the optimiser"),
    "automl_max_trials": (7, "max_recommendations", 7),
    "automl_min_points_in_model": (5, "min_points_in_model", 5),
    "automl_perturbation_factor": (1.5, "perturbation_factor", 1.5),
    "automl_mutation_factor": (0.7, "mutation_factor", 0.7),
    "llm_endpoint": ("http://127.0.0.1:8000/v1", "llm_endpoint", "http://127.0.0.1:8000/v1"),
    "base_url": ("http://127.0.0.1:8000/v1", "llm_endpoint", "http://127.0.0.1:8000/v1"),
    "llm_model": ("m", "llm_model", "m"),
    "model": ("m", "llm_model", "m"),
    "llm_temperature": (0.5, "llm_temperature", 0.5),
    "llm_max_tokens": (512, "llm_max_tokens", 512),
    # an API key only as a reference (a literal one is refused: tests/integration/test_bad_inputs.py)
    "llm_api_key": ("${oc.env:TAO_COMPAT_KEY}", "llm_api_key", SecretRef("TAO_COMPAT_KEY")),
    "api_key": ("${oc.env:TAO_COMPAT_KEY}", "llm_api_key", SecretRef("TAO_COMPAT_KEY")),
    "automl_crossover_prob": (0.3, "crossover_prob", 0.3),
    "automl_population_size": (6, "population_size", 6),
    "automl_reduction_factor": (4, "reduction_factor", 4),
    "automl_top_n_percent": (20.0, "top_n_percent", 20.0),
    "baseline_metric": (0.5, "baseline_metric", 0.5),
    "baseline_record_path": ("/r/b.json", "baseline_record_path", "/r/b.json"),
    "direction": ("maximize", "direction", "maximize"),
    "evaluation_records_dir": ("/r", "evaluation_records_dir", "/r"),
    "experiment_id": ("exp1", "session_id", "exp1"),
    "final_evaluation": ({"metric_value": 0.9}, "final_evaluation", {"metric_value": 0.9}),
    "final_evaluation_metric": (0.9, "final_evaluation_metric", 0.9),
    "final_evaluation_record_path": ("/r/f.json", "final_evaluation_record_path", "/r/f.json"),
    "metric": ("accuracy", "metric", "accuracy"),
    "reuse_best_metric_for_final_evaluation": (True, "reuse_best_metric_for_final_evaluation", True),
    "run_baseline": (False, "baseline", False),
    "run_final_evaluation": (False, "final_eval", False),
    "session_id": ("s1", "session_id", "s1"),
    **{k: (1000, "train_sample_count", 1000) for k in PEER_KNOWN[-14:]},
}
# restating keys: the value this runner honours is accepted, the other is refused
RESTATING = {"automl_delete_intermediate_ckpt": (False, True), "automl_retain_failed_artifacts": (True, False)}
# a run() argument here (custom_param_ranges), tested below
ELSEWHERE = {"automl_range_override"}
# refused on purpose, with a hint (rung epochs are given directly)
REFUSED = {"epoch_multiplier"}
# objective keys -> automl_settings (with the key) and the `objectives` they make (its parse_objective_config)
OBJECTIVE = {
    "objectives": ({"objectives": ["mAP", "latency_ms"]}, ["mAP", "latency_ms"]),
    "metric_weight": ({"metric": "mAP", "metric_weight": 2.0}, [{"weight": 2.0, "scale": 1.0, "metric": "mAP"}]),
    "metric_scale": ({"metric_scale": 10.0}, [{"weight": 1.0, "scale": 10.0}]),
    **{k: ({k: True}, [{"weight": 1.0, "scale": 1.0},
                       {"metric": "latency", "direction": "minimize", "weight": 1.0, "scale": 1.0}])
       for k in ("include_latency", "multi_objective", "latency_objective")},
    "latency_metric": ({"include_latency": True, "latency_metric": "latency_ms"},
                       [{"weight": 1.0, "scale": 1.0},
                        {"metric": "latency_ms", "direction": "minimize", "weight": 1.0, "scale": 1.0}]),
    "latency_direction": ({"include_latency": True, "latency_direction": "maximize"},
                          [{"weight": 1.0, "scale": 1.0},
                           {"metric": "latency", "direction": "maximize", "weight": 1.0, "scale": 1.0}]),
    "latency_weight": ({"include_latency": True, "latency_weight": 0.5},
                       [{"weight": 1.0, "scale": 1.0},
                        {"metric": "latency", "direction": "minimize", "weight": 0.5, "scale": 1.0}]),
    "latency_scale": ({"include_latency": True, "latency_scale": 100.0},
                      [{"weight": 1.0, "scale": 1.0},
                       {"metric": "latency", "direction": "minimize", "weight": 1.0, "scale": 100.0}]),
}


def test_the_copied_list_is_complete_and_every_key_is_classified():
    assert len(PEER_KNOWN) == len(set(PEER_KNOWN)) == 75
    assert set(PEER_KNOWN) == set(PEER_KEYS)
    classified = set(MAPPED) | set(RESTATING) | ELSEWHERE | REFUSED | set(NOT_AVAILABLE) | set(OBJECTIVE)
    assert classified == set(PEER_KNOWN)


@pytest.mark.parametrize("key", PEER_KNOWN)
def test_every_peer_settings_key(key):
    if key in MAPPED:
        value, field, expected = MAPPED[key]
        assert getattr(parse_settings({key: value}), field) == expected
    elif key in RESTATING:
        ok, bad = RESTATING[key]
        parse_settings({key: ok})
        with pytest.raises(SettingsError, match=key) as info:
            parse_settings({key: bad})
        assert "not available yet" in str(info.value)
    elif key in ELSEWHERE:
        args = _compat_args({"automl_settings": {key: [{"parameter": "train.lr", "valid_min": 0.01,
                                                          "valid_max": 0.1}]},
                             "custom_param_ranges": None}, None)
        assert args["custom_param_ranges"] == {"train.lr": {"valid_min": 0.01, "valid_max": 0.1}}
        assert key not in args["automl_settings"]
    elif key in REFUSED:
        with pytest.raises(SettingsError, match=key):
            parse_settings({key: 2})
    elif key in OBJECTIVE:
        raw, expected = OBJECTIVE[key]
        assert parse_settings(raw).objectives == expected
    else:
        value = "sk-very-secret-0001" if "key" in key else 1
        with pytest.raises(SettingsError, match=key) as info:
            parse_settings({key: value})
        text = str(info.value)
        assert "not available yet" in text and NOT_AVAILABLE[key] in text
        assert "sk-very-secret-0001" not in text  # an API key is never echoed


def test_peer_aliases_are_plain_aliases():
    assert SETTINGS_ALIASES["automl_max_concurrent"] == "max_concurrent"
    assert SETTINGS_ALIASES["run_baseline"] == "baseline"


def test_conflicting_spellings_are_an_error():
    with pytest.raises(SettingsError, match="conflicting"):
        parse_settings({"automl_max_concurrent": 2, "max_concurrent": 3})
    with pytest.raises(SettingsError, match="automl_max_generations"):
        parse_settings({"automl_max_generations": 4, "automl_eval_interval": 2, "max_epochs": 9})
    assert parse_settings({"automl_max_generations": 4, "automl_eval_interval": 2}).max_epochs == 8


def test_algorithm_knob_for_another_algorithm_is_an_error(tmp_path):
    runner = AutoMLRunner(skill_dir=TOY, workspace_dir=tmp_path)
    with pytest.raises(SettingsError, match="perturbation_factor.*does not apply to algorithm 'bayesian'"):
        runner.review(automl_settings={"automl_perturbation_factor": 1.5})
    with pytest.raises(SettingsError, match="kde_samples.*'random'"):
        runner.review(automl_algorithm="random", automl_settings={"automl_kde_samples": 8})
    assert not list(tmp_path.iterdir())  # nothing written


def test_bad_values_of_translated_keys():
    with pytest.raises(SettingsError, match="final_evaluation"):
        parse_settings({"final_evaluation": 0.9})
    with pytest.raises(SettingsError, match="automl_range_override"):
        _compat_args({"automl_settings": {"automl_range_override": {"train.lr": 1}}}, None)
    with pytest.raises(SettingsError, match="given twice"):
        _compat_args({"automl_settings": {"automl_range_override": [{"parameter": "train.lr"}]},
                      "custom_param_ranges": {"train.lr": {"valid_min": 0.1}}}, None)


def test_recommendation_is_a_read_only_mapping_with_attributes():
    rec = Recommendation(id="t1", specs={"train.optim.lr": 0.01, "model.depth": 3}, job_id="j1",
                         status="success", result=0.8, metric="acc")
    assert rec.get("train.optim.lr", 1e-4) == 0.01 and rec.get("missing", 7) == 7
    assert rec["model.depth"] == 3 and "model.depth" in rec and len(rec) == 2
    assert dict(rec) == {"train.optim.lr": 0.01, "model.depth": 3}
    assert (rec.id, rec.rec_id, rec.job_id, rec.status, rec.result, rec.metric_value) == \
        ("t1", "t1", "j1", "success", 0.8, 0.8)
    assert rec.hyperparameters == dict(rec) and rec.to_dict()["rec_id"] == "t1"
    assert bool(Recommendation(id="empty"))
    with pytest.raises(TypeError):
        rec["model.depth"] = 4  # read-only
    with pytest.raises(AttributeError):
        rec.status = "failure"


@pytest.mark.parametrize("state,value,reason,status", [
    ("succeeded", 0.5, None, "success"),
    ("stopped", 0.4, None, "success"),  # stopped early by the scheduler with a value
    ("stopped", None, None, "failure"),
    ("failed", None, "program", "failure"),
    ("failed", None, "canceled", "canceled"),
    ("running", None, None, "running"),
])
def test_recommendation_status_words(state, value, reason, status):
    t = TrialResult(rec_id="r", status=state, metric_value=value, failure_reason=reason,
                    hyperparameters={"a.b": 1})
    rec = Recommendation.from_trial(t, "m")
    assert rec.status == status and rec.state == state
    assert rec.result == (value if status == "success" else None)


def test_execution_override_is_checked_before_launch():
    from tao_automl.skill import load_skill

    skill = load_skill(TOY)
    good = {"type": "python_script", "script": "scripts/train.py", "args": ["--config", "{config_path}", "--x"],
            "config_format": "json"}
    new = apply_execution(skill, "train", good)
    assert new.action("train").execution.args == ["--config", "{config_path}", "--x"]
    assert new.action("train").config_format == "json"
    assert skill.action("train").execution.args != new.action("train").execution.args  # per run only
    for bad, key in [({"type": "command"}, "execution.type"),
                     ({"type": "python_script", "script": "nope.py"}, "execution.script"),
                     ({**good, "args": "--config"}, "execution.args"),
                     ({**good, "config_format": "ini"}, "execution.config_format"),
                     ({**good, "cwd": "no/such/dir"}, "execution.cwd"),
                     ({**good, "scrpt": "x"}, "execution.scrpt")]:
        with pytest.raises(SettingsError, match=key.replace(".", r"\.")):
            apply_execution(skill, "train", bad)


def test_constructor_takes_the_peer_order_and_poll_interval():
    from tao_automl.platforms import LocalBackend

    backend = LocalBackend()
    r = AutoMLRunner(backend, TOY, "train", poll_interval=0.5)  # nvidia-tao-automl's order
    assert r.platform_sdk is backend and r.skill_dir == str(TOY.resolve()) and r.poll_interval == 0.5
    assert r.action == "train" and r.workspace_dir == "automl_workspace"
    assert _compat_args({"automl_settings": None}, 0.5)["automl_settings"] == {"poll_interval_s": 0.5}
    given = _compat_args({"automl_settings": {"poll_interval_s": 2.0}}, 0.5)["automl_settings"]
    assert given == {"poll_interval_s": 2.0}  # the explicit setting wins
    with pytest.raises(SettingsError, match="poll_interval"):
        AutoMLRunner(skill_dir=TOY, poll_interval=0)


def test_pbt_and_bohb_knobs_reach_the_builders():
    tune = pytest.importorskip("ray.tune")
    from tao_automl.algorithms import BuildContext, get_algorithm

    space = {"train.lr": tune.loguniform(1e-4, 1e-1), "train.wd": tune.uniform(0.0, 0.1)}
    s = parse_settings({"algorithm": "pbt", "automl_population_size": 4, "automl_eval_interval": 1,
                        "automl_perturbation_factor": 1.5})
    plan = get_algorithm("pbt").build(BuildContext(param_space=space, metric="m", mode="min", settings=s,
                                                   max_epochs=4))
    assert plan.scheduler._perturbation_factors == (1.5, 1 / 1.5)
    assert plan.scheduler._perturbation_interval == 1 and plan.num_samples == 4
    pytest.importorskip("hpbandster")
    s = parse_settings({"algorithm": "bohb", "automl_kde_samples": 16, "automl_top_n_percent": 30.0,
                        "automl_min_points_in_model": 3, "max_epochs": 9})
    plan = get_algorithm("bohb").build(BuildContext(param_space=space, metric="m", mode="min", settings=s,
                                                    max_epochs=9))
    assert plan.search_alg._bohb_config == {"min_points_in_model": 3, "top_n_percent": 30.0, "num_samples": 16}


@pytest.mark.parametrize("ret,status,value", [
    (0.7, "measured", 0.7),
    ({"metric_value": 0.6, "note": "x"}, "measured", 0.6),
    (None, "metric_missing", None),
    (ValueError("boom"), "callback_error", None),
])
def test_evaluation_callback_status_words(tmp_path, ret, status, value):
    from tao_automl.execution.evaluations import run_evaluation
    from tao_automl.store.workspace import Workspace

    def callback(*args):
        if isinstance(ret, Exception):
            raise ret
        return ret

    ws = Workspace(str(tmp_path))
    ev = run_evaluation(kind="final", prepared=None, ws=ws, job_root=str(tmp_path), checkpoint="c.pth",
                        callback=callback, callback_args=("rec", "job"))
    assert (ev.status, ev.metric_value, ev.source) == (status, value, "final_eval_fn")
    if status == "callback_error":
        assert "final_eval_fn raised ValueError: boom" in ev.reason
    assert ws.read_json("evaluations/final.json")["status"] == status
