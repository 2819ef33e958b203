"""``hybrid`` without Ray Tune's loop: phase plans from a scripted
OpenAI-compatible server on 127.0.0.1 through the real ``openai`` client,
their validation and repair, the inner registry searchers sweeping the chosen
parameters with the rest at the incumbent, the plan prompt (phases,
sensitivities), stop, endpoint failures, save/restore and the audit."""

from __future__ import annotations

import pickle
import time

import attrs
import pytest

from tao_automl.algorithms import get_algorithm
from tao_automl.algorithms.llm.brain import BrainLog, audit
from tao_automl.algorithms.llm.hybrid import HybridSearcher, sensitivities, spearman, validate_plan
from tao_automl.config.settings import parse_settings
from tao_automl.errors import LLMError
from tao_automl.execution.tuning import EarlyStop
from tao_automl.search.params import Constraint, SearchParam
from tao_automl.search.space import SearchSpace
from tao_automl.store.workspace import Workspace
from tao_automl.testing.llm_server import Reply, Status, phase_plan, phase_policy, prompt_state

LR, BS, MOM, ACT, NI = "train.lr", "train.batch_size", "train.momentum", "model.activation", "train.num_instances"


def space() -> SearchSpace:
    return SearchSpace(params=[
        SearchParam(LR, "float", default=0.01, low=1e-4, high=0.1, log=True),
        SearchParam(BS, "int", default=32, low=8, high=256, encoding="pow2"),
        SearchParam(MOM, "float", default=0.9, low=0.0, high=0.95, step=0.05),
        SearchParam(ACT, "categorical", default="relu", options=("relu", "tanh")),
        SearchParam(NI, "int", default=4, low=2, high=8),
    ], constraints=[Constraint("multiple_of", BS, NI)])


DEFAULTS = {LR: 0.01, BS: 32, MOM: 0.9, ACT: "relu", NI: 4}


def settings(srv, **kw):
    return parse_settings({"algorithm": "hybrid", "llm_endpoint": srv.base_url, "llm_model": "test-model",
                           "seed": 3, "max_recommendations": 6, "grid_points": 3, **kw})


def searcher(srv, tmp_path, stop=None, **kw) -> HybridSearcher:
    s = settings(srv, **kw)
    ws = Workspace(tmp_path / "exp")
    ws.makedirs()
    sr = HybridSearcher(space=space(), metric="val_loss", mode="min", settings=s, budget=s.max_recommendations,
                        brain=BrainLog(ws.root), stop=stop, notes="SKILL notes")
    sr.client.sleep = lambda s: None
    return sr


def events(tmp_path, kind=None) -> list[dict]:
    evs = list(Workspace(tmp_path / "exp").events("brain"))
    return [e for e in evs if kind is None or e["kind"] == kind]


def finish(sr, tid, metric):
    sr.on_trial_complete(tid, {"val_loss": metric})


# ------------------------------------------------------------ validation
def test_plan_validation():
    s = parse_settings({"max_recommendations": 10, "grid_points": 3})
    ok = validate_plan(space(), {"action": "explore", "algorithm": "TPE", "parameters": [LR], "trials": 3,
                                 "reasoning": "lr first"}, budget_left=5, settings=s)
    assert ok.ok and ok.plan["algorithm"] == "tpe" and ok.plan["trials"] == 3
    bad = validate_plan(space(), {"action": "explore", "algorithm": "hyperband", "parameters": [LR, "bogus", LR],
                                  "trials": 9, "reasoning": "", "extra": 1}, budget_left=5, settings=s)
    text = " | ".join(bad.problems)
    assert not bad.ok
    for part in ("'hyperband' is not allowed", "multi-fidelity", "unknown parameters ['bogus']", "repeats a name",
                 "from 1 to 5", "unexpected top-level keys ['extra']", "'reasoning' must be a non-empty"):
        assert part in text
    assert validate_plan(space(), {"action": "explore", "algorithm": "random", "parameters": [], "trials": 1,
                                   "reasoning": "x"}, budget_left=5, settings=s).problems == [
        "'parameters' must be a non-empty list of parameter names"]
    assert "'action' must be" in validate_plan(space(), {"action": "go", "reasoning": "x"}, budget_left=5,
                                               settings=s).problems[-1]
    # a grid must fit in the phase's trials: activation (2) x momentum (3 grid points) = 6
    grid = {"action": "explore", "algorithm": "grid", "parameters": [ACT, MOM], "trials": 4, "reasoning": "g"}
    assert "has 6 points" in validate_plan(space(), grid, budget_left=8, settings=s).problems[0]
    assert validate_plan(space(), {**grid, "trials": 6}, budget_left=8, settings=s).ok
    stop = validate_plan(space(), {"action": "stop", "reasoning": "converged"}, budget_left=5, settings=s)
    assert stop.ok and stop.plan == {"action": "stop", "reasoning": "converged"}
    assert not validate_plan(space(), {"action": "stop"}, budget_left=5, settings=s).ok


def test_spearman_and_sensitivities():
    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    assert spearman([1, 1, 1], [1, 2, 3]) is None and spearman([1, 2], [1, 2]) is None
    trials = [{"trial_id": str(i), "metric": float(i), "config": {LR: 0.001 * (i + 1), ACT: "relu", MOM: 0.5}}
              for i in range(4)]
    sens = sensitivities(space(), trials)
    assert sens[LR]["rank_correlation_with_score"] == 1.0 and sens[LR]["distinct_values"] == 4
    assert sens[ACT]["rank_correlation_with_score"] is None and sens[BS]["trials"] == 0


def test_hybrid_is_registered_and_builds(llm_server):
    spec = get_algorithm("hybrid")
    assert spec.llm_guided and not spec.multi_fidelity and "llm_endpoint" in spec.settings_used


# ------------------------------------------------------------ searcher
def test_phase_sweeps_only_the_chosen_parameters_then_moves_the_incumbent(llm_server, tmp_path):
    llm_server.script(Reply(phase_plan([LR, ACT], algorithm="random", trials=2, reasoning="lr and activation")),
                      Reply(phase_plan([MOM], algorithm="bayesian", trials=3, reasoning="now momentum")))
    sr = searcher(llm_server, tmp_path, max_concurrent=2)
    a, b = sr.suggest("a"), sr.suggest("b")
    for cfg in (a, b):
        dec = sr.space.decode(cfg)
        assert {k: dec[k] for k in (BS, MOM, NI)} == {BS: 32, MOM: 0.9, NI: 4}  # the incumbent (defaults)
    assert a[BS] == 5  # encoded: 2**5
    assert (a[LR], a[ACT]) != (b[LR], b[ACT])
    # the phase is spent: the next plan waits until its trials finished
    assert sr.suggest("c") is None and len(llm_server.requests) == 1
    finish(sr, "a", 2.0)
    assert sr.suggest("c") is None
    finish(sr, "b", 1.0)
    c = sr.suggest("c")
    dec = sr.space.decode(c)
    best_b = sr.space.decode(b)
    assert dec[LR] == best_b[LR] and dec[ACT] == best_b[ACT] and dec[BS] == 32  # carried forward from b
    # the second prompt holds the first phase's result and the sensitivities
    state = prompt_state(llm_server.requests[1])
    (ph,) = state["phases"]
    assert ph["algorithm"] == "random" and ph["parameters"] == [LR, ACT] and ph["best"]["metric"] == 1.0
    assert state["incumbent"]["metric"] == 1.0 and state["incumbent"]["config"][LR] == best_b[LR]
    assert set(state["parameter_sensitivity"]) == set(sr.space.names)
    assert state["budget"] == {"trials_total": 6, "trials_left": 4}
    plans = events(tmp_path, "plan")
    assert [p["algorithm"] for p in plans] == ["random", "bayesian"] and plans[1]["parameters"] == [MOM]
    decisions = events(tmp_path, "decision")
    assert [d["decision"] for d in decisions] == ["run"] * 3
    assert decisions[2]["reasoning"] == "now momentum" and decisions[2]["request"] == plans[1]["request"]


def test_bayesian_phase_runs_its_trials_then_the_budget_ends(llm_server, tmp_path):
    llm_server.script(Reply(phase_plan([LR], algorithm="bayesian", trials=4)),
                      Reply(phase_plan([MOM, NI], algorithm="grid", trials=2)))
    sr = searcher(llm_server, tmp_path, max_recommendations=6, grid_points=2)
    seen = []
    for i in range(4):
        cfg = sr.suggest(f"t{i}")
        seen.append(sr.space.decode(cfg)[LR])
        finish(sr, f"t{i}", abs(seen[-1] - 0.003))
    assert len(set(seen)) == 4 and all(1e-4 <= v <= 0.1 for v in seen)
    # grid: momentum 2 points x num_instances ... 2 points = 4 > 2 trials -> invalid, no repair reply left
    llm_server.script(Reply(phase_plan([MOM], algorithm="grid", trials=2)))
    a, b = sr.suggest("g1"), sr.suggest("g2")
    assert sorted([sr.space.decode(a)[MOM], sr.space.decode(b)[MOM]]) == [0.0, 0.95]
    assert sr.space.decode(a)[LR] == min(seen, key=lambda v: abs(v - 0.003))
    finish(sr, "g1", 1.0)
    finish(sr, "g2", 1.0)
    assert sr.suggest("x") == HybridSearcher.FINISHED and len(llm_server.requests) == 3
    proposals = events(tmp_path, "proposal")
    assert [p["valid"] for p in proposals] == [True, False, True]
    assert "has 4 points" in llm_server.requests[2]["messages"][-1]["content"]
    assert audit(Workspace(tmp_path / "exp")).ok


def test_stop_with_a_reason_ends_the_search_and_passes_the_audit(llm_server, tmp_path):
    llm_server.script(Reply(phase_plan([LR], algorithm="random", trials=1)),
                      Reply(phase_plan(action="stop", reasoning="the score is flat in every parameter")))
    sr = searcher(llm_server, tmp_path)
    sr.suggest("a")
    finish(sr, "a", 0.5)
    assert sr.suggest("b") == HybridSearcher.FINISHED and sr.stopped.startswith("the score is flat")
    assert sr.suggest("c") == HybridSearcher.FINISHED and len(llm_server.requests) == 2
    last = events(tmp_path, "decision")[-1]
    assert last["decision"] == "finish" and last["trials_left"] == 5
    assert audit(Workspace(tmp_path / "exp")).ok


def test_invalid_plan_twice_stops_with_llm_error_and_never_substitutes(llm_server, tmp_path):
    llm_server.script(Reply(phase_plan([LR], algorithm="asha", trials=2)),
                      Reply(phase_plan(["train.bogus"], algorithm="random", trials=2)))
    stop = EarlyStop(str(tmp_path / "exp"))
    sr = searcher(llm_server, tmp_path, stop=stop)
    assert sr.suggest("a") == HybridSearcher.FINISHED
    assert isinstance(stop.error, LLMError) and "unknown parameters ['train.bogus']" in str(stop.error)
    assert "test-model" in str(stop.error) and llm_server.base_url in str(stop.error)
    repair = llm_server.requests[1]["messages"][-1]["content"]
    assert "'asha' is not allowed" in repair
    assert sr.suggested == 0 and sr.phases == []
    found = audit(Workspace(tmp_path / "exp"))
    assert not found.ok and any("stopped" in p for p in found.problems)


def test_endpoint_failure_stops_with_llm_error(llm_server, tmp_path):
    llm_server.script(Status(401, "invalid api key"))
    stop = EarlyStop(str(tmp_path / "exp"))
    sr = searcher(llm_server, tmp_path, stop=stop)
    assert sr.suggest("a") == HybridSearcher.FINISHED
    assert "HTTP 401" in str(stop.error) and len(llm_server.requests) == 1
    assert events(tmp_path, "decision")[-1]["decision"] == "stop"


def test_plan_format_steps_down(llm_server, tmp_path):
    llm_server.script(Status(400, "response_format json_schema unsupported", when_format="json_schema"),
                      Reply("Plan:\n```json\n" + phase_plan([LR], algorithm="random", trials=1) + "\n```"))
    sr = searcher(llm_server, tmp_path)
    assert sr.suggest("a") is not None
    assert llm_server.requests[0]["response_format"]["json_schema"]["name"] == "hpo_phase_plan"
    assert llm_server.requests[1]["response_format"] == {"type": "json_object"}


def test_save_restore_and_pickle_continue_the_phase(llm_server, tmp_path):
    llm_server.script(Reply(phase_plan([LR, MOM], algorithm="bayesian", trials=4)))
    sr = searcher(llm_server, tmp_path)
    sr.suggest("a")
    finish(sr, "a", 1.0)
    sr.suggest("b")
    path = str(tmp_path / "searcher.pkl")
    sr.save(path)
    again = searcher(llm_server, tmp_path)
    again.restore(path)
    assert again.suggested == 2 and len(again.phases) == 1 and "b" in again.pending
    cfg = again.suggest("c")
    assert cfg is not None and len(llm_server.requests) == 1  # same phase, no new plan
    again.client.sleep = time.sleep  # the test's no-wait lambda does not pickle
    clone = pickle.loads(pickle.dumps(again))
    assert clone.suggest("d") is not None and clone.phases[0]["suggested"] == 4


def test_phase_policy_plans_are_valid(llm_server, tmp_path):
    llm_server.policy = phase_policy
    sr = searcher(llm_server, tmp_path, max_recommendations=5)
    for i in range(5):
        cfg = sr.suggest(f"t{i}")
        assert cfg is not None
        finish(sr, f"t{i}", float(i))
    assert sr.suggest("z") == HybridSearcher.FINISHED
    assert [p["algorithm"] for p in events(tmp_path, "plan")] == ["random", "bayesian", "bayesian"]
    assert audit(Workspace(tmp_path / "exp")).ok


# ------------------------------------------------------------ warm start
def _gp_spy(monkeypatch) -> list[dict]:
    """Record what the real GP sampler proposes ({} = a start-up draw, not from the model)."""
    from tao_automl.algorithms._gp_sampler import GPSampler

    seen: list[dict] = []
    real = GPSampler.sample_relative

    def spy(self, study, trial, search_space):
        out = real(self, study, trial, search_space)
        seen.append(out)
        return out

    monkeypatch.setattr(GPSampler, "sample_relative", spy)
    return seen


def _random_then_bayesian(llm_server, tmp_path, *more: Reply, **kw) -> HybridSearcher:
    llm_server.script(Reply(phase_plan([LR, BS, MOM, ACT, NI], algorithm="random", trials=4)),
                      Reply(phase_plan([LR, BS, MOM], algorithm="bayesian", trials=3)), *more)
    sr = searcher(llm_server, tmp_path, max_recommendations=7 + len(more), **kw)
    for i, metric in enumerate((0.5, 0.2, None, 0.9)):
        sr.suggest(f"r{i}")
        if metric is None:
            sr.on_trial_complete(f"r{i}", None, error=True)  # a failed trial: no score, no warm point
        else:
            finish(sr, f"r{i}", metric)
    return sr


def test_bayesian_phase_starts_from_the_finished_trials(llm_server, tmp_path, monkeypatch):
    from optuna.trial import TrialState

    seen = _gp_spy(monkeypatch)
    sr = _random_then_bayesian(llm_server, tmp_path)
    sr.warm_start = "all"  # every scored trial, projected on the phase's parameters
    cfg = sr.suggest("b0")
    phase = sr.phases[1]
    assert phase["algorithm"] == "bayesian" and phase["warm_start"] == ["r0", "r1", "r3"]
    study = sr._inner._ot_study
    done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    # the 3 scored trials, projected on the phase's parameters (searcher encoding: batch size 2**e)
    assert sorted(t.value for t in done) == [0.2, 0.5, 0.9]
    for t in done:
        src = next(f for f in sr.finished.values() if f["metric"] == t.value)["config"]
        assert t.params == {LR: src[LR], BS: sr.space.encode({BS: src[BS]})[BS], MOM: src[MOM]}
    # the start-up count (3 for a 3-trial phase) is met: the first suggestion is the GP's
    assert sr._inner._sampler._n_startup == 3
    assert len(seen) == 1 and set(seen[0]) == {LR, BS, MOM}
    assert seen[0] == {k: cfg[k] for k in (LR, BS, MOM)}
    assert events(tmp_path, "plan")[1]["warm_start"] == 3
    # the phase's own trials join the same study; save/restore keeps the warm points
    finish(sr, "b0", 0.1)
    path = str(tmp_path / "searcher.pkl")
    sr.save(path)
    again = searcher(llm_server, tmp_path, max_recommendations=7)
    again.warm_start = "none"  # the restored phase keeps its own study, whatever the rebuild would add
    again.restore(path)
    assert len(again._inner._ot_study.get_trials(states=(TrialState.COMPLETE,))) == 4
    assert again.suggest("b1") is not None and len(seen) == 2 and seen[1]
    assert len(llm_server.requests) == 2


def test_warm_start_matching_by_default_and_none(llm_server, tmp_path, monkeypatch):
    from optuna.trial import TrialState

    seen = _gp_spy(monkeypatch)
    sr = _random_then_bayesian(llm_server, tmp_path, Reply(phase_plan([LR, BS, MOM], algorithm="bayesian",
                                                                      trials=1)))
    assert sr.warm_start == "matching"
    sr.suggest("b0")
    # only the trials whose unswept parameters (activation, instances) are the incumbent's (r1, the best)
    unswept = {t: (sr.finished[t]["config"][ACT], sr.finished[t]["config"][NI]) for t in ("r0", "r1", "r3")}
    assert unswept["r0"] != unswept["r1"] and unswept["r3"] != unswept["r1"]
    assert sr.phases[1]["warm_start"] == ["r1"]
    assert [t.value for t in sr._inner._ot_study.get_trials(states=(TrialState.COMPLETE,))] == [0.2]
    assert seen == [{}]  # 1 point < the start-up count (3): a start-up draw
    # the next phase over the same parameters: every trial of the phase before lies on its slice
    finish(sr, "b0", 0.3)
    for t, metric in (("b1", 0.4), ("b2", 0.1)):
        sr.suggest(t)
        finish(sr, t, metric)
    sr.suggest("c0")
    assert sr.phases[2]["warm_start"] == ["r1", "b0", "b1", "b2"]
    assert seen[-1] and set(seen[-1]) == {LR, BS, MOM}  # 4 points >= the start-up count: the GP
    sr = _random_then_bayesian(llm_server, tmp_path / "n")
    sr.warm_start = "none"  # the old behaviour: the phase's study starts empty
    sr.suggest("b0")
    assert sr.phases[1]["warm_start"] == [] and sr._inner._ot_study.get_trials(states=(TrialState.COMPLETE,)) == []


def test_evaluated_points_reach_the_bayesian_builders_study():
    from optuna.trial import TrialState

    from tao_automl.algorithms import BuildContext

    sp = SearchSpace(params=[SearchParam(LR, "float", default=0.01, low=1e-4, high=0.1, log=True)])
    s = parse_settings({"seed": 1, "max_recommendations": 5})
    ctx = BuildContext(param_space=sp.to_ray(), metric="m", mode="max", settings=s, max_epochs=1, space=sp,
                       evaluated_points=(({LR: 0.001}, 0.7), ({LR: 0.05}, 0.2)))
    alg = get_algorithm("bayesian").build(ctx).search_alg
    alg.set_search_properties("m", "max", sp.to_ray())
    done = alg._ot_study.get_trials(states=(TrialState.COMPLETE,))
    assert [(t.params, t.value) for t in done] == [({LR: 0.001}, 0.7), ({LR: 0.05}, 0.2)]
    with pytest.raises(ValueError, match="cannot be combined"):
        get_algorithm("bayesian").build(attrs.evolve(ctx, initial_points=[{LR: 0.01}]))
