"""Overrides: dotted/indexed keys, shorthand aliases, key_defaults, conflicts."""

from __future__ import annotations

import pytest

from tao_automl.errors import SpecError
from tao_automl.spec.overrides import apply_overrides, canonicalize

TEMPLATE = {
    "train": {"num_epochs": 10, "optim": {"lr": 0.1}, "gpu_ids": [0]},
    "dataset": {"batch_size": 8, "label_map": {"a": 0}},
}
SHORT = {"num_epochs": "train.num_epochs", "learning_rate": "train.optim.lr",
         "batch_size": "dataset.batch_size"}


def test_dotted_and_indexed_overrides_walk_to_leaf():
    out = apply_overrides(TEMPLATE, {"train.optim.lr": 0.5, "train.gpu_ids[1]": 1,
                                     "dataset.label_map": {"x": 0, "y": 1}})
    assert out["train"]["optim"]["lr"] == 0.5
    assert out["train"]["gpu_ids"] == [0, 1]
    assert out["dataset"]["label_map"] == {"x": 0, "y": 1}  # mapping replaces, no merge
    assert not any("." in k for k in out)
    assert TEMPLATE["train"]["optim"]["lr"] == 0.1  # input untouched (deep copy)


def test_shorthand_aliases_resolve():
    out = apply_overrides(TEMPLATE, {"num_epochs": 3, "learning_rate": 0.01}, shorthand=SHORT)
    assert out["train"]["num_epochs"] == 3 and out["train"]["optim"]["lr"] == 0.01
    assert "num_epochs" not in out


def test_alias_and_full_path_conflict_raises_naming_both():
    with pytest.raises(SpecError) as exc:
        apply_overrides(TEMPLATE, {"num_epochs": 3, "train.num_epochs": 4}, shorthand=SHORT)
    msg = str(exc.value)
    assert "num_epochs" in msg and "train.num_epochs" in msg and "3" in msg and "4" in msg


def test_alias_and_full_path_same_value_is_fine():
    out = apply_overrides(TEMPLATE, {"num_epochs": 3, "train.num_epochs": 3}, shorthand=SHORT)
    assert out["train"]["num_epochs"] == 3


def test_exact_top_level_key_beats_alias():
    spec = {"batch_size": 1, "dataset": {"batch_size": 8}}
    res = canonicalize({"batch_size": 4}, shorthand=SHORT, spec=spec)
    assert res.dotted() == {"batch_size": 4}
    assert any("not used" in n for n in res.notes)
    out = apply_overrides(spec, {"batch_size": 4}, shorthand=SHORT)
    assert out == {"batch_size": 4, "dataset": {"batch_size": 8}}


def test_key_defaults_apply_below_overrides():
    out = apply_overrides(TEMPLATE, {"train.optim.lr": 0.3},
                          key_defaults={"train.optim.lr": 0.2, "train.seed": 7})
    assert out["train"]["optim"]["lr"] == 0.3 and out["train"]["seed"] == 7


def test_prefix_overrides_apply_shorter_first():
    out = apply_overrides(TEMPLATE, {"dataset.label_map.z": 2, "dataset.label_map": {"x": 0}})
    assert out["dataset"]["label_map"] == {"x": 0, "z": 2}


def test_impossible_override_path_names_value():
    with pytest.raises(SpecError) as exc:
        apply_overrides(TEMPLATE, {"train.num_epochs.value": 1})
    assert "train.num_epochs.value" in str(exc.value) and "10" in str(exc.value)
    with pytest.raises(SpecError, match="out of range"):
        apply_overrides(TEMPLATE, {"train.gpu_ids[3]": 1})


def test_bad_keys_raise_spec_error():
    with pytest.raises(SpecError):
        apply_overrides(TEMPLATE, {"train..lr": 1})
    with pytest.raises(SpecError, match="must be a string"):
        apply_overrides(TEMPLATE, {3: 1})


def test_equivalent_spellings_canonicalize_to_one_key():
    res = canonicalize({'train["optim"].lr': 1})
    assert res.dotted() == {"train.optim.lr": 1}
    assert res.given_as[("train", "optim", "lr")] == 'train["optim"].lr'
