"""Every algorithm in the registry runs a real search on the toy model skill.

One run per algorithm (tiny budgets, cached per module) feeds several
assertions: the result validates against the JSON Schema, trial counts and
early stops per algorithm, best = min over succeeded trials, the best
checkpoint exists, the final evaluation ran the evaluate action on it (and
equals evaluating that checkpoint by hand), max_concurrent was honoured
(from the ledger's submit/finish times).  Seeds make bayesian/random
reproducible.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tao_automl.algorithms import ALGORITHMS
from tao_automl.reporting.results import validate_result
from tao_automl.store.ledger import JobLedger
from tao_automl.store.workspace import Workspace
from tao_automl.testing.algorithm import AlgorithmCase, AlgorithmContract, local_ray

REPO = Path(__file__).resolve().parents[2]
TOY = REPO / "examples" / "toy_skill"

# name -> (settings, spec overrides, hyperparameters)
PLANS = {
    # epoch_sleep_s: trials last long enough to overlap on a loaded 2-core machine
    "bayesian": ({"max_recommendations": 4, "max_concurrent": 2},
                 {"train.num_epochs": 2, "train.epoch_sleep_s": 0.5}, None),
    # every configuration proposed through a scripted OpenAI-compatible server (its
    # policy perturbs the best finished trial: not an LLM); the endpoint is added below
    "llm": ({"max_recommendations": 4, "max_concurrent": 2},
            {"train.num_epochs": 2, "train.epoch_sleep_s": 0.5}, None),
}
# The toy skill runs the real train/evaluate scripts: PLANS check what only it shows
# (the evaluate action measured by hand, spec files, workspace files). Every other
# registry entry runs once, on the objective skill, in the shipped algorithm
# contract at the end of this module (CONTRACT_CASES), with its own checks there.
UNIQUE = sorted({spec.name for spec in ALGORITHMS.values()})
# The phase-planning and keep/discard LLM modes need scripted replies of their own
# reply contracts: their end-to-end runs on Ray live in this file's sibling.
LLM_E2E = {"hybrid": "tests/integration/test_llm_hybrid_e2e.py",
           "autoresearch": "tests/integration/test_llm_hybrid_e2e.py"}
PLANNED = [n for n in UNIQUE if n in PLANS]


def test_every_registered_algorithm_has_a_plan():
    missing = set(UNIQUE) - set(PLANS) - set(LLM_E2E) - set(CONTRACT_CASES)
    assert not missing, f"add a plan for {missing}"
    for name, path in LLM_E2E.items():  # covered there: a run of that algorithm on Ray
        assert f'automl_algorithm="{name}"' in (REPO / path).read_text() or f"'{name}'" in (REPO / path).read_text()


@pytest.fixture(scope="module")
def shared_ray():
    yield from local_ray()


def run_toy(root: Path, algorithm: str, settings: dict, overrides: dict, hps=None) -> dict:
    from tao_automl.runner import AutoMLRunner

    runner = AutoMLRunner(skill_dir=TOY, workspace_dir=root)
    return runner.run(automl_algorithm=algorithm, automl_settings={"seed": 1, **settings},
                      spec_overrides=overrides, automl_hyperparameters=hps)


@pytest.fixture(scope="module")
def llm_endpoint():
    from tao_automl.testing.llm_server import ScriptedLLMServer, perturbation_policy

    with ScriptedLLMServer(policy=perturbation_policy) as srv:
        yield {"llm_endpoint": srv.base_url, "llm_model": "scripted-policy"}


@pytest.fixture(scope="module")
def runs(shared_ray, tmp_path_factory, llm_endpoint):
    cache: dict[str, dict] = {}

    def get(name: str) -> dict:
        if name not in cache:
            settings, overrides, hps = PLANS[name]
            if ALGORITHMS[name].llm_guided:
                settings = {**settings, **llm_endpoint}
            cache[name] = run_toy(tmp_path_factory.mktemp(name), name, settings, overrides, hps)
        return cache[name]

    return get


def attempts(result: dict) -> list[tuple[str, object]]:
    led = JobLedger(Workspace(result["workspace"]))
    return [(rec.trial_id, att) for rec in led.trials() for att in rec.attempts]


def max_overlap(result: dict) -> int:
    events = []
    for _, att in attempts(result):
        end = (att.finished or att.stopped or {}).get("t")
        assert end is not None, "every attempt ends with a finished/stopped event"
        events += [(att.submitted_at, 1), (end, -1)]
    cur = peak = 0
    for _, d in sorted(events, key=lambda e: (e[0], e[1])):
        cur += d
        peak = max(peak, cur)
    return peak


def evaluate_by_hand(checkpoint: str, tmp: Path) -> float:
    spec = yaml.safe_load((TOY / "references" / "spec_template_evaluate.yaml").read_text())
    spec["evaluate"]["checkpoint"] = checkpoint
    spec["results_dir"] = str(tmp / "eval")
    (tmp / "spec.yaml").write_text(yaml.safe_dump(spec))
    subprocess.run([sys.executable, str(TOY / "scripts" / "evaluate.py"), "--config", str(tmp / "spec.yaml")],
                   check=True, capture_output=True)
    return json.loads((tmp / "eval" / "results.json").read_text())["val_loss"]


@pytest.mark.parametrize("name", PLANNED)
def test_algorithm_end_to_end(name, runs, tmp_path):
    res = runs(name)
    validate_result(res)
    settings = PLANS[name][0]
    hist = res["history"]
    assert res["algorithm"] == name and res["stopped_early"] is None
    budget = settings["max_recommendations"]
    assert len(hist) == budget
    assert all(t["status"] == "succeeded" for t in hist), [t["status"] for t in hist]
    succeeded = hist
    assert res["best"]["metric_value"] == min(t["metric_value"] for t in succeeded)
    assert res["progress"]["completed"] == len(succeeded) and res["progress"]["total"] == budget
    # the best checkpoint is a real file of the best trial's job
    best = res["best"]
    ckpt = Path(best["checkpoint"])
    assert ckpt.is_file() and best["rec_id"] in str(ckpt)
    assert best["specs"]["train"]  # the spec the best trial ran
    # the final evaluation ran the evaluate action on that checkpoint
    final = res["final_evaluation"]
    assert final["status"] == "measured" and final["checkpoint"] == best["checkpoint"]
    eval_spec = yaml.safe_load((Path(final["record_path"]) / "spec.yaml").read_text())
    assert eval_spec["evaluate"]["checkpoint"] == best["checkpoint"]
    assert final["metric_value"] == pytest.approx(evaluate_by_hand(best["checkpoint"], tmp_path), abs=1e-9)
    # max_concurrent honoured, and used
    peak = max_overlap(res)
    assert min(2, settings["max_concurrent"]) <= peak <= settings["max_concurrent"]
    # per-epoch metrics recorded, epochs consistent with the spec that ran
    for t in succeeded:
        epochs = [e["epoch"] for e in t["metrics_per_epoch"]]
        assert t["epochs_completed"] == max(epochs)
        assert t["duration_s"] is not None and t["duration_s"] > 0
    # workspace files
    ws = Path(res["workspace"])
    for f in ("settings.json", "search_space.json", "review.json", "result.json", "history.csv"):
        assert (ws / f).is_file(), f
    assert json.loads((ws / "result.json").read_text())["best"]["rec_id"] == best["rec_id"]


@pytest.mark.parametrize("name", ["bayesian", "random"])
def test_seed_reproducibility(name, shared_ray, tmp_path):
    from tao_automl.runner import AutoMLRunner

    settings = {"max_recommendations": 2, "max_concurrent": 1, "baseline": False, "final_eval": False}
    over = {"train.num_epochs": 1}
    a = run_toy(tmp_path / "a", name, {**settings, "seed": 7}, over)
    b = run_toy(tmp_path / "b", name, {**settings, "seed": 7}, over)
    hp = lambda r: [t["hyperparameters"] for t in r["history"]]  # noqa: E731
    assert hp(a) == hp(b) and len(hp(a)) == 2
    assert [t["metric_value"] for t in a["history"]] == [t["metric_value"] for t in b["history"]]
    other = AutoMLRunner(skill_dir=TOY, workspace_dir=tmp_path / "c").review(
        automl_algorithm=name, automl_settings={**settings, "seed": 8}, spec_overrides=over)
    assert other["recommendations"][0]["overrides"] != hp(a)[0]


def test_asha_with_the_bayesian_sampler(shared_ray, tmp_path):
    """sampler: bayesian swaps asha's random draws for the GP sampler; early
    stopping still works and every trial is accounted for."""
    from ray import tune
    from ray.tune.search.optuna import OptunaSearch

    from tao_automl.algorithms import BuildContext, get_algorithm
    from tao_automl.config.settings import parse_settings

    settings = {"max_recommendations": 8, "max_concurrent": 2, "max_epochs": 4, "reduction_factor": 2,
                "sampler": "bayesian"}
    ctx = BuildContext(param_space={"train.lr": tune.loguniform(1e-4, 1e-1)}, metric="val_loss",
                       mode="min", settings=parse_settings({**settings, "algorithm": "asha"}), max_epochs=4)
    assert isinstance(get_algorithm("asha").build(ctx).search_alg, OptunaSearch)
    res = run_toy(tmp_path, "asha", settings, {"train.epoch_sleep_s": 0.1}, ["train.lr", "train.momentum"])
    hist = res["history"]
    assert len(hist) == 8 and all(t["status"] in ("succeeded", "stopped") for t in hist)
    assert any(t["status"] == "stopped" and t["epochs_completed"] < 4 for t in hist)
    assert len({t["hyperparameters"]["train.lr"] for t in hist}) == 8
    assert res["best"]["metric_value"] == min(t["metric_value"] for t in hist if t["metric_value"] is not None)


# -- the shipped algorithm contract (tao_automl.testing.algorithm), for every registry entry ------
# on the built-in closed-form objective skill

CONTRACT_CASES = {
    "bayesian": AlgorithmCase(name="bayesian", trials=4, settings={"max_recommendations": 4, "max_concurrent": 2}),
    "random": AlgorithmCase(name="random", trials=4, settings={"max_recommendations": 4, "max_concurrent": 2}),
    "grid": AlgorithmCase(name="grid", trials=3, hyperparameters=["train.lr"],
                          settings={"grid_points": 3, "max_recommendations": 3, "max_concurrent": 2}),
    "hyperband": AlgorithmCase(name="hyperband", trials=6, stops_early=True, pauses=True,
                               settings={"max_recommendations": 6, "max_concurrent": 2, "max_epochs": 4,
                                         "reduction_factor": 2}, overrides={"train.epoch_sleep_s": 0.1}),
    "asha": AlgorithmCase(name="asha", trials=6, stops_early=True,
                          settings={"max_recommendations": 6, "max_concurrent": 2, "max_epochs": 4,
                                    "reduction_factor": 2}, overrides={"train.epoch_sleep_s": 0.1}),
    "bohb": AlgorithmCase(name="bohb", trials=6, stops_early=True, pauses=True,
                          settings={"max_recommendations": 6, "max_concurrent": 2, "max_epochs": 4,
                                    "reduction_factor": 2}, overrides={"train.epoch_sleep_s": 0.1}),
    "pbt": AlgorithmCase(name="pbt", trials=4, pauses=True, exploits=True,
                         settings={"population_size": 4, "max_concurrent": 4, "max_epochs": 8,
                                   "perturbation_interval": 2}, overrides={"train.epoch_sleep_s": 0.2}),
    # two whole brackets: 4@1, 2@2, 1@4 and 2@2, 1@4 epochs; promoted configurations
    # run again from scratch at the higher budget, so some jobs end before max_epochs
    # (both slots used: asserted by tests/integration/test_dehb_e2e.py)
    "dehb": AlgorithmCase(name="dehb", trials=10,
                          settings={"max_recommendations": 10, "max_concurrent": 2, "max_epochs": 4,
                                    "reduction_factor": 2}, overrides={"train.epoch_sleep_s": 0.1}),
}
# LLM-guided algorithms need an endpoint: the contract's plain settings cannot
# name one. Their end-to-end runs use a scripted OpenAI-compatible server
# (PLANS["llm"] above; hybrid and autoresearch in LLM_E2E).
CONTRACT_UNIQUE = [n for n in UNIQUE if not ALGORITHMS[n].llm_guided]


def test_every_registered_algorithm_has_a_contract_case():
    missing = set(CONTRACT_UNIQUE) - set(CONTRACT_CASES)
    assert not missing, f"add a case for {missing}"


class TestAlgorithmContract(AlgorithmContract):
    @pytest.fixture(params=CONTRACT_UNIQUE)
    def algorithm_case(self, request):
        return CONTRACT_CASES[request.param]

    # -- checks of single registry entries, on the contract's (cached) runs ------------
    def test_pbt_exploits_other_trials_checkpoints(self, algorithm_runs):
        res = algorithm_runs(CONTRACT_CASES["pbt"])
        led = JobLedger(Workspace(res["workspace"]))
        exploited = []
        for rec in led.trials():
            for att in rec.attempts[1:]:
                assert att.resume_from, "a later PBT attempt always resumes from a checkpoint"
                src = Path(att.resume_from).parts[-3]
                if src != rec.trial_id:
                    exploited.append((rec, att, src))
        assert exploited, "no trial was exploited from another trial's checkpoint"
        rec, att, src = exploited[0]
        events = [e for e in Workspace(res["workspace"]).events(f"ledger/{rec.trial_id}") if e["kind"] == "planned"]
        assert len(events) >= 2, "the exploit changed the config: a new 'planned' event"
        assert events[-1]["source_trial"] == src
        hist = {t["rec_id"]: t for t in res["history"]}
        assert hist[rec.trial_id]["hyperparameters"] == events[-1]["hyperparameters"]
        # the spec of the exploited attempt carries the new hyperparameters
        spec = yaml.safe_load(Path(att.spec_path).read_text())
        assert spec["train"]["lr"] == pytest.approx(events[-1]["hyperparameters"]["train.lr"])

    def test_grid_covers_the_grid(self, algorithm_runs):
        res = algorithm_runs(CONTRACT_CASES["grid"])
        lrs = sorted(t["hyperparameters"]["train.lr"] for t in res["history"])
        assert len(set(lrs)) == 3
        rows = {r["name"]: r for r in res["search_space"]}
        assert lrs[0] == pytest.approx(rows["train.lr"]["minimum"])
        assert lrs[-1] == pytest.approx(rows["train.lr"]["maximum"])
