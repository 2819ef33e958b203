"""automl_settings: aliases, unknown keys, types, direction, conflicts, wandb."""

from __future__ import annotations

import pytest

from tao_automl.config.settings import (
    SETTINGS_ALIASES,
    AutoMLSettings,
    WandbSettings,
    parse_settings,
)
from tao_automl.errors import SettingsError


def test_defaults():
    s = parse_settings(None)
    assert isinstance(s, AutoMLSettings)
    assert s.algorithm == "bayesian" and s.max_concurrent == 1 and s.direction is None
    assert s.mode is None and s.wandb is None


@pytest.mark.parametrize(
    "alias,canon,value",
    [
        ("automl_algorithm", "algorithm", "asha"),
        ("num_recommendations", "max_recommendations", 7),
        ("automl_max_recommendations", "max_recommendations", 7),
        ("num_trials", "max_recommendations", 9),
        ("num_samples", "max_recommendations", 9),
        ("max_concurrent_trials", "max_concurrent", 3),
        ("automl_max_epochs", "max_epochs", 12),
        ("automl_reduction_factor", "reduction_factor", 4),
        ("population", "population_size", 6),
        ("grace_period", "min_epochs", 2),
        ("experiment_name", "session_id", "exp-1"),
    ],
)
def test_aliases_map_to_one_field(alias, canon, value):
    assert SETTINGS_ALIASES[alias] == canon
    s = parse_settings({alias: value})
    assert getattr(s, canon) == value


@pytest.mark.parametrize("raw,expected", [("min", "minimize"), ("MAX", "maximize"),
                                          ("minimize", "minimize"), ("maximize", "maximize")])
def test_direction_spellings(raw, expected):
    s = parse_settings({"direction": raw})
    assert s.direction == expected
    assert s.mode == ("min" if expected == "minimize" else "max")
    assert parse_settings({"mode": raw}).direction == expected
    assert parse_settings({"metric_direction": raw}).direction == expected


def test_bad_direction():
    with pytest.raises(SettingsError) as ei:
        parse_settings({"direction": "upwards"})
    assert "direction" in str(ei.value) and "upwards" in str(ei.value)
    assert "minimize" in str(ei.value)


def test_unknown_key_did_you_mean():
    with pytest.raises(SettingsError) as ei:
        parse_settings({"max_concurent": 2})
    msg = str(ei.value)
    assert "max_concurent" in msg and "did you mean 'max_concurrent'" in msg


def test_unknown_key_without_close_match_lists_keys():
    with pytest.raises(SettingsError) as ei:
        parse_settings({"zzzz_qqq": 1})
    assert "zzzz_qqq" in str(ei.value) and "max_recommendations" in str(ei.value)


def test_epoch_multiplier_is_rejected_explicitly():
    with pytest.raises(SettingsError) as ei:
        parse_settings({"epoch_multiplier": 2})
    assert "epoch_multiplier" in str(ei.value) and "max_epochs" in str(ei.value)


@pytest.mark.parametrize(
    "key,value",
    [
        ("max_recommendations", "10"),
        ("max_recommendations", 3.7),
        ("max_recommendations", True),
        ("max_concurrent", "2"),
        ("seed", 1.5),
        ("baseline", "yes"),
        ("baseline", 1),
        ("poll_interval_s", "fast"),
        ("metric", 3),
        ("session_id", ["a"]),
    ],
)
def test_wrong_types_name_key_and_value(key, value):
    with pytest.raises(SettingsError) as ei:
        parse_settings({key: value})
    msg = str(ei.value)
    assert key in msg and repr(value) in msg or str(value) in msg


@pytest.mark.parametrize(
    "key,value",
    [("max_recommendations", 0), ("max_concurrent", -1), ("max_epochs", 0), ("max_retries", -1),
     ("reduction_factor", 1), ("checkpoint_selection", "median"), ("poll_interval_s", 0)],
)
def test_out_of_range_values(key, value):
    with pytest.raises(SettingsError) as ei:
        parse_settings({key: value})
    assert key in str(ei.value)


def test_float_accepts_int():
    assert parse_settings({"poll_interval_s": 2}).poll_interval_s == 2


def test_conflicting_aliases():
    with pytest.raises(SettingsError) as ei:
        parse_settings({"max_recommendations": 5, "num_trials": 6})
    assert "conflicting" in str(ei.value) and "num_trials" in str(ei.value)
    # the same value twice is not a conflict
    assert parse_settings({"max_recommendations": 5, "num_trials": 5}).max_recommendations == 5


def test_overrides_win_over_raw():
    s = parse_settings({"algorithm": "random"}, algorithm="asha")
    assert s.algorithm == "asha"
    assert parse_settings({"algorithm": "random"}, algorithm=None).algorithm == "random"


def test_non_mapping_and_non_string_keys():
    with pytest.raises(SettingsError):
        parse_settings(["max_recommendations", 3])  # type: ignore[arg-type]
    with pytest.raises(SettingsError):
        parse_settings({1: 2})  # type: ignore[dict-item]


def test_roundtrip_through_dict_and_instance():
    s = parse_settings({"algorithm": "pbt", "seed": 3, "wandb": {"project": "p", "tags": ["a"]}})
    d = s.to_dict()
    assert d["wandb"]["project"] == "p" and d["seed"] == 3
    assert parse_settings(d) == s
    assert parse_settings(s) == s


def test_wandb_block():
    s = parse_settings({"wandb": {"project": "proj", "entity": "me", "mode": "offline", "tags": ["x"]}})
    assert isinstance(s.wandb, WandbSettings)
    assert (s.wandb.project, s.wandb.entity, s.wandb.mode, s.wandb.tags) == ("proj", "me", "offline", ["x"])
    assert s.wandb.enabled is True
    assert parse_settings({"wandb": False}).wandb.enabled is False
    assert parse_settings({"wandb": True}).wandb.enabled is True


def test_wandb_unknown_key():
    with pytest.raises(SettingsError) as ei:
        parse_settings({"wandb": {"projct": "p"}})
    assert "projct" in str(ei.value)


# -- errors name the key as the user wrote it -------------------------------------


@pytest.mark.parametrize("alias", sorted(SETTINGS_ALIASES))
def test_wrong_type_names_the_alias_as_written(alias):
    with pytest.raises(SettingsError) as ei:
        parse_settings({alias: ["not", "a", "scalar"]})
    exc = ei.value
    assert alias in exc.key and alias in str(exc), (alias, exc.key, str(exc))
    canon = SETTINGS_ALIASES[alias]
    if canon not in (None, alias):  # the canonical name travels beside it
        assert f"'{exc.key}' ({canon})" in str(exc)


def test_quoted_example_and_value_checks_name_the_alias():
    with pytest.raises(SettingsError) as ei:
        parse_settings({"automl_max_recommendations": "ten"})
    assert ei.value.key == "automl_max_recommendations"
    assert "key 'automl_max_recommendations' (max_recommendations), value 'ten'" in str(ei.value)
    for raw, key in [({"num_trials": 0}, "num_trials"), ({"automl_reduction_factor": 1}, "automl_reduction_factor"),
                     ({"mode": "up"}, "mode"), ({"grace_period": -1}, "grace_period")]:
        with pytest.raises(SettingsError) as ei:
            parse_settings(raw)
        assert ei.value.key == key and f"key '{key}' (" in str(ei.value), str(ei.value)


def test_canonical_spelling_and_run_argument_are_left_alone():
    with pytest.raises(SettingsError) as ei:
        parse_settings({"max_recommendations": "ten"})
    assert ei.value.key == "max_recommendations" and "(max_recommendations)" not in str(ei.value)
    # the run() argument automl_algorithm, and the setting "algorithm" when the user wrote that
    with pytest.raises(SettingsError) as ei:
        parse_settings({}, algorithm=3)
    assert ei.value.key == "automl_algorithm" and "key 'automl_algorithm' (algorithm)" in str(ei.value)


def test_later_checks_are_renamed_too():
    from tao_automl.config.settings import name_as_written, written_keys

    # a check after parsing names the canonical key inside its message only
    exc = SettingsError("min_epochs must be below max_epochs", key="automl_settings.min_epochs", value=5,
                        expected="< max_epochs (3)")
    name_as_written(exc, written_keys({"grace_period": 5, "automl_max_epochs": 3}))
    assert exc.key == "automl_settings.grace_period"
    assert "key 'automl_settings.grace_period' (min_epochs), value 5" in str(exc)
    # an unknown algorithm written as automl_settings["algorithm"] is named so
    exc = SettingsError("unknown AutoML algorithm", key="automl_algorithm", value="x")
    name_as_written(exc, written_keys({"algorithm": "x"}))
    assert exc.key == "automl_settings.algorithm" and "key 'automl_settings.algorithm' (algorithm)" in str(exc)
    # ... and left alone when it came as run(automl_algorithm=...)
    exc = SettingsError.from_message("unknown AutoML algorithm: key 'automl_algorithm'", key="automl_algorithm")
    name_as_written(exc, written_keys({}, algorithm="x"))
    assert exc.key == "automl_algorithm" and str(exc) == "unknown AutoML algorithm: key 'automl_algorithm'"
    # keys that are no setting are never touched
    exc = SettingsError.from_message("invalid platform kwarg: key 'gpu_count'", key="gpu_count")
    name_as_written(exc, written_keys({"mode": "max"}))
    assert exc.key == "gpu_count" and str(exc) == "invalid platform kwarg: key 'gpu_count'"
