"""PBT leaves architecture parameters alone (settings.pbt_fixed)."""

from __future__ import annotations

import pytest

tune = pytest.importorskip("ray.tune")

from tao_automl.algorithms import BuildContext, get_algorithm  # noqa: E402
from tao_automl.config.settings import parse_settings  # noqa: E402
from tao_automl.errors import SettingsError  # noqa: E402

SPACE = {
    "model.backbone": tune.choice(["resnet18", "resnet50"]),
    "model.head.num_layers": tune.randint(1, 4),
    "train.optim.lr": tune.loguniform(1e-5, 1e-2),
    "train.optim.weight_decay": tune.uniform(0.0, 0.1),
}


def _ctx(space=SPACE, **settings) -> BuildContext:
    s = parse_settings({"algorithm": "pbt", "population_size": 4, "perturbation_interval": 1, **settings})
    return BuildContext(param_space=space, metric="val_loss", mode="min", settings=s, max_epochs=4)


def _mutated(ctx: BuildContext) -> set[str]:
    plan = get_algorithm("pbt").build(ctx)
    return set(plan.scheduler._hyperparam_mutations)


def test_model_parameters_are_not_mutated_by_default() -> None:
    assert _mutated(_ctx()) == {"train.optim.lr", "train.optim.weight_decay"}


def test_pbt_fixed_names_and_prefixes() -> None:
    assert _mutated(_ctx(pbt_fixed=["train.optim.weight_decay"])) == {
        "model.backbone", "model.head.num_layers", "train.optim.lr"}
    assert _mutated(_ctx(pbt_fixed=["model.head.", "train.optim.lr"])) == {
        "model.backbone", "train.optim.weight_decay"}
    assert _mutated(_ctx(pbt_fixed=[])) == set(SPACE)


def test_entry_matching_nothing_is_an_error_naming_it() -> None:
    with pytest.raises(SettingsError) as exc:
        get_algorithm("pbt").build(_ctx(pbt_fixed=["model.bakcbone"]))
    msg = str(exc.value)
    assert "pbt_fixed" in msg and "model.bakcbone" in msg and "model.backbone" in msg


def test_nothing_left_to_mutate_is_an_error_before_launch() -> None:
    arch_only = {k: v for k, v in SPACE.items() if k.startswith("model.")}
    with pytest.raises(SettingsError, match="no parameter it may change"):
        get_algorithm("pbt").build(_ctx(space=arch_only))


def test_review_shows_the_resolved_fixed_parameters(tmp_path) -> None:
    from pathlib import Path

    from tao_automl.runner import AutoMLRunner

    toy = Path(__file__).resolve().parents[2] / "examples" / "toy_skill"
    review = AutoMLRunner(str(toy), workspace_dir=str(tmp_path)).review(
        automl_algorithm="pbt", automl_settings={"population_size": 4, "max_epochs": 6, "perturbation_interval": 2})
    assert review["budget"]["pbt_fixed"] == ["model.hidden_size", "model.activation"]
