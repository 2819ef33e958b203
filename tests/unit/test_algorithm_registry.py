"""The algorithm registry owns each algorithm's behaviour (issue 13): trial
budget, initial batch, estimate, review notes, fixed parameters.  No module
outside ``tao_automl/algorithms/`` (and the contract suites in
``tao_automl/testing/``) compares anything to an algorithm's name."""

from __future__ import annotations

import ast
import shutil
from pathlib import Path

import pytest

from tao_automl.algorithms import ALGORITHMS, AlgorithmSpec, BuildContext, get_algorithm
from tao_automl.config.settings import parse_settings
from tao_automl.errors import SettingsError, WorkspaceError

PKG = Path(__file__).resolve().parents[2] / "tao_automl"
EXEMPT = ("algorithms", "testing")  # the registry itself; contract suites that name the algorithm under test
# settings whose values share words with algorithm names ("random", "bayesian"):
# comparing them to those words is about the setting, not the algorithm
OTHER_SETTINGS = frozenset({"sampler", "llm_fallback"})


def _subject(node: ast.expr) -> str | None:
    """The name a compared expression ends in: ``x.sampler`` -> sampler,
    ``s.get("algorithm")`` / ``s["algorithm"]`` -> algorithm."""
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant):
        return str(node.slice.value)
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get"
            and node.args and isinstance(node.args[0], ast.Constant)):
        return str(node.args[0].value)
    return None


def _names_in(node: ast.expr, names: frozenset[str]) -> list[str]:
    """Algorithm names a compared operand holds as string literals (itself, or the
    elements of a literal tuple/list/set it is tested against)."""
    items = node.elts if isinstance(node, (ast.Tuple, ast.List, ast.Set)) else [node]
    return [i.value for i in items if isinstance(i, ast.Constant) and isinstance(i.value, str)
            and i.value.strip().lower() in names]


def name_tests(source: str, names: frozenset[str]) -> list[tuple[int, str]]:
    """(line, source) of every comparison, ``in`` test or ``case`` pattern that
    tests something against a string literal naming a registry algorithm."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Compare):
            operands = [node.left, *node.comparators]
            for left, right in zip(operands, operands[1:], strict=False):
                for literal_side, other in ((left, right), (right, left)):
                    if _names_in(literal_side, names) and _subject(other) not in OTHER_SETTINGS:
                        found.append((node.lineno, ast.unparse(node)))
        elif isinstance(node, ast.MatchValue) and _names_in(node.value, names):
            found.append((node.lineno, ast.unparse(node.value)))
    return sorted(set(found))


def _registry_names() -> frozenset[str]:
    names = set(ALGORITHMS)
    names |= {spec.name for spec in ALGORITHMS.values()}
    return frozenset(n.lower() for n in names)


def test_the_guard_catches_name_tests_and_passes_other_settings():
    names = _registry_names()
    assert {"pbt", "grid", "bayesian", "random", "llm", "hybrid", "autoresearch", "dehb"} <= names
    src = '\n'.join([
        'if algorithm.name == "pbt": pass',           # 1 equality
        'if "grid" != algo.name: pass',                # 2 literal on the left
        'ok = name in ("hybrid", "autoresearch")',     # 3 membership in a literal tuple
        'ok = s.get("algorithm") == "PBT"',            # 4 any case
        'match name:\n    case "dehb": pass',          # 5-6 a case pattern
        'ok = settings.sampler != "random"',           # 7 another setting: fine
        'ok = self.llm_fallback in (None, "random")',  # 8 another setting: fine
        'algorithm: str = "bayesian"',                 # 9 a default, not a test: fine
        'ok = key in ("pbt_fixed", "seed")',           # 10 not an algorithm name: fine
    ])
    assert [line for line, _ in name_tests(src, names)] == [1, 2, 3, 4, 6]


def test_no_algorithm_name_is_tested_outside_the_registry():
    names = _registry_names()
    offenders = []
    for path in sorted(PKG.rglob("*.py")):
        rel = path.relative_to(PKG)
        if rel.parts[0] in EXEMPT:
            continue
        offenders += [f"tao_automl/{rel}:{line}: {code}"
                      for line, code in name_tests(path.read_text(encoding="utf-8"), names)]
    assert not offenders, ("algorithm names tested outside tao_automl/algorithms/ (ask the registry entry "
                           "instead):\n" + "\n".join(offenders))


# -- the behaviour each entry owns -------------------------------------------------------------

TOY = PKG.parent / "examples" / "toy_skill"
LLM = {"llm_endpoint": "http://127.0.0.1:9/v1", "llm_model": "m"}


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    dest = tmp_path_factory.mktemp("toy") / "skill"
    shutil.copytree(TOY, dest)
    return dest


def _review(toy, tmp_path, algorithm, settings, hyperparameters=None):
    from tao_automl.runner import AutoMLRunner

    runner = AutoMLRunner(skill_dir=toy, workspace_dir=tmp_path / "ws")
    return runner.review(automl_algorithm=algorithm, automl_hyperparameters=hyperparameters,
                         automl_settings={"seed": 3, "baseline": False, **settings})


@pytest.mark.parametrize("name, raw, max_epochs, full, assumption", [
    ("bayesian", {"max_recommendations": 12}, None, 12, None),
    ("pbt", {"population_size": 5, "max_recommendations": 12}, 8, 5, None),  # the population trains
    ("grid", {"max_recommendations": 12}, None, 12, "grid: at most max_recommendations trials"),
    # log_3(9) + 1 = 3 rungs: 12 trials x 3 / 3
    ("asha", {"max_recommendations": 12, "reduction_factor": 3}, 9, 12.0,
     "asha: about 3 rungs with reduction factor 3; ~12.0 full-trial equivalents for 12 trials"),
    ("hyperband", {"max_recommendations": 8, "reduction_factor": 2}, 8, 16.0,
     "hyperband: about 4 rungs with reduction factor 2; ~16.0 full-trial equivalents for 8 trials"),
])
def test_each_entry_owns_its_estimate(name, raw, max_epochs, full, assumption):
    spec = get_algorithm(name)
    got, assumptions = spec.estimate(parse_settings({**raw, "algorithm": name}), max_epochs)
    assert got == full
    assert assumptions == ([assumption] if assumption else [])


def test_dehb_estimate_counts_the_epochs_its_brackets_train():
    from tao_automl.algorithms._de import review_plan

    s = parse_settings({"algorithm": "dehb", "max_recommendations": 10, "reduction_factor": 2})
    plan = review_plan(s, 4)
    full, [assumption] = get_algorithm("dehb").estimate(s, 4)
    assert full == plan["planned_epochs"] / 4 and plan["planned_jobs"] == 10
    assert assumption == (f"dehb: 10 jobs training {plan['planned_epochs']} epochs in all "
                          f"= {full:.1f} full-trial equivalents")


def test_trial_budget_reads_the_entrys_setting_from_settings_or_settings_json(tmp_path):
    from tao_automl.reporting.progress import snapshot
    from tao_automl.store.workspace import Workspace

    s = parse_settings({"algorithm": "pbt", "population_size": 6, "max_recommendations": 20})
    assert get_algorithm("pbt").trial_budget(s) == 6
    assert get_algorithm("random").trial_budget(s) == 20
    ws = Workspace(str(tmp_path))
    for algorithm, budget in (("pbt", 6), ("random", 20), ("not-registered-here", 20)):
        saved = {"settings": {"algorithm": algorithm, "population_size": 6, "max_recommendations": 20}}
        assert snapshot(ws, settings=saved).budget == budget, algorithm


def test_initial_batches():
    import random

    from tao_automl.search import build_search_space
    from tao_automl.skill import load_skill

    skill = load_skill(TOY)
    space = build_search_space(skill.schema("train"), skill.template("train"), skill_name=skill.name)
    s = parse_settings({"max_recommendations": 5, "max_concurrent": 3, "population_size": 4})
    assert len(get_algorithm("random").initial_batch(s, space, random.Random(0))) == 3  # one per slot
    assert len(get_algorithm("pbt").initial_batch(s, space, random.Random(0))) == 4  # the whole population
    for name in ("llm", "hybrid", "autoresearch"):  # an LLM proposes every configuration
        assert get_algorithm(name).initial_batch(s, space, random.Random(0)) == []


def test_grid_review_shows_the_first_grid_points_tune_runs(toy, tmp_path):
    """Known gap closed: grid's review had no initial batch; it shows the
    configurations Tune's grid generator starts first, in its order."""
    from ray.tune.experiment import Experiment
    from ray.tune.search import BasicVariantGenerator

    from tao_automl.runner import AutoMLRunner

    settings = {"grid_points": 3, "max_recommendations": 9, "max_concurrent": 4}  # 3 lr x 3 activations
    hps = ["train.lr", "model.activation"]
    rv = _review(toy, tmp_path, "grid", settings, hps)
    plan = AutoMLRunner(skill_dir=toy, workspace_dir=tmp_path / "ws")._prepare({
        "automl_algorithm": "grid", "automl_settings": {"seed": 3, "baseline": False, **settings},
        "spec_overrides": None, "automl_hyperparameters": hps, "custom_param_ranges": None,
        "train_dataset_uri": None, "eval_dataset_uri": None, "dataset_uris": None, "base_checkpoint": None,
        "platform_kwargs": {}})
    built = plan.algorithm.build(BuildContext(param_space=plan.space.to_ray(), metric=plan.metric, mode=plan.mode,
                                              settings=plan.settings, max_epochs=1, space=plan.space))
    gen = BasicVariantGenerator(constant_grid_search=True)
    gen.add_configurations([Experiment("grid", lambda config: None, config=dict(built.param_space))])
    first = [gen.next_trial().config for _ in range(4)]
    assert plan.initial_points == first
    assert len({str(sorted(c.items())) for c in first}) == 4
    shown = [r["overrides"] for r in rv["recommendations"]]
    assert shown == [plan.space.decode(c) for c in first]


def test_review_notes_of_the_llm_guided_entries():
    s = parse_settings({**LLM, "max_concurrent": 2})
    assert get_algorithm("llm").review_notes(s) == [
        "llm: every configuration is proposed at run time by model 'm' at http://127.0.0.1:9/v1 "
        "(no initial batch; audit trail in brain/)"]
    assert get_algorithm("hybrid").review_notes(s)[0].startswith("hybrid: model 'm' at http://127.0.0.1:9/v1 "
                                                                 "plans each phase")
    [note] = get_algorithm("autoresearch").review_notes(s)
    assert "max_concurrent 2 is not used" in note and "measured by 2 re-run(s)" in note
    assert get_algorithm("bayesian").review_notes(s) == []


def test_rebuild_refusal_is_the_entrys(tmp_path):
    from tao_automl.execution.rebuild import refuse_if_unbuildable
    from tao_automl.store.ledger import JobLedger
    from tao_automl.store.workspace import Workspace

    ledger = JobLedger(Workspace(str(tmp_path)))
    for algorithm in ("pbt", get_algorithm("pbt")):  # a name (as before) or the entry
        with pytest.raises(WorkspaceError, match="a PBT population cannot be rebuilt from the ledger"):
            refuse_if_unbuildable(ledger, algorithm, "state lost")
    refuse_if_unbuildable(ledger, get_algorithm("random"), "state lost")  # rebuilt from the ledger


@pytest.mark.parametrize("algorithm, setting, value, expected", [
    ("bayesian", "perturbation_factor", 1.5, "leave it out, or use pbt"),
    ("random", "kde_samples", 8, "leave it out, or use bohb"),
    ("bayesian", "sampler", "bayesian", "leave it out, or use asha/hyperband (bayesian is model-based already)"),
    ("asha", "mutation_factor", 0.5, "leave it out, or use automl_algorithm='dehb'"),
    ("random", "llm_model", "m", "leave it out, or use an LLM-guided algorithm ('llm', 'hybrid', 'autoresearch')"),
])
def test_the_registry_names_the_algorithms_that_read_a_setting(toy, tmp_path, algorithm, setting, value, expected):
    with pytest.raises(SettingsError) as err:
        _review(toy, tmp_path, algorithm, {setting: value, "max_epochs": 4})
    assert setting in str(err.value) and expected in str(err.value)


def test_a_new_algorithm_is_one_registry_entry(toy, tmp_path, monkeypatch):
    """prepare, review and progress ask the entry: a registered algorithm's
    budget, initial batch, estimate and notes are used without touching them."""
    base = get_algorithm("random")
    probe = AlgorithmSpec(
        name="probe", description="a test entry", build=base.build, settings_used=base.settings_used,
        budget_setting="population_size",
        initial_batch_fn=lambda s, space, rng: [space.sample(rng)],
        estimate_fn=lambda s, max_epochs: (2.5, ["two and a half trials"]),
        review_notes_fn=lambda s: [f"probe: {s.population_size} members"],
        fixed_params_fn=lambda s, names: sorted(n for n in names if n.startswith("model.")))
    monkeypatch.setitem(ALGORITHMS, "probe", probe)
    rv = _review(toy, tmp_path, "probe", {"max_recommendations": 9, "max_concurrent": 3, "population_size": 7})
    assert len(rv["recommendations"]) == 1
    assert "probe: 7 members" in rv["notes"]
    assert rv["estimate"]["full_trial_equivalents"] == 2.5
    assert "probe: two and a half trials" in rv["estimate"]["assumptions"]
    assert rv["budget"]["pbt_fixed"] == ["model.activation", "model.hidden_size"]
    assert probe.trial_budget({"population_size": 7}) == 7
