"""The one direction rule: explicit > declared > name fallback with a warning."""

from __future__ import annotations

import logging
import math

import pytest

from tao_automl.errors import SettingsError, SkillError
from tao_automl.execution.metrics import best_index, is_better, resolve_direction


@pytest.mark.parametrize(
    "explicit, declared, expected",
    [
        ("minimize", "maximize", "minimize"),
        ("MAX", "minimize", "maximize"),
        ("min", None, "minimize"),
        (None, "maximize", "maximize"),
        (None, "Min", "minimize"),
    ],
)
def test_explicit_then_declared(explicit, declared, expected, caplog):
    with caplog.at_level(logging.WARNING):
        assert resolve_direction("val_loss", explicit, declared) == expected
    assert caplog.records == []


def test_invalid_explicit_is_settings_error():
    with pytest.raises(SettingsError, match="'minimize' or 'maximize'") as exc:
        resolve_direction("val_loss", explicit="down")
    assert exc.value.value == "down"


def test_invalid_declared_is_skill_error():
    with pytest.raises(SkillError, match="skill_info.yaml"):
        resolve_direction("val_loss", declared="lower")


@pytest.mark.parametrize(
    "metric, expected",
    [
        ("val_loss", "minimize"),
        ("Validation loss", "minimize"),
        ("celoss", "minimize"),
        ("val_error", "minimize"),
        ("top1_err", "minimize"),
        ("eval/wer", "minimize"),
        ("CER", "minimize"),
        ("inference_latency_ms", "minimize"),
        ("step_time", "minimize"),
        ("val_mse", "minimize"),
        ("mae", "minimize"),
        ("rmse", "minimize"),
        ("perplexity", "minimize"),
        ("val_accuracy", "maximize"),
        ("mAP", "maximize"),
        ("answer_accuracy", "maximize"),  # contains "wer" as letters, not as a word
        ("precision", "maximize"),
        ("runtime_score", "maximize"),
    ],
)
def test_fallback_rule_warns_naming_metric(metric, expected, caplog):
    with caplog.at_level(logging.WARNING, logger="tao_automl.direction"):
        assert resolve_direction(metric) == expected
    [rec] = caplog.records
    assert rec.levelno == logging.WARNING
    msg = rec.getMessage()
    assert repr(metric) in msg and expected in msg
    assert "direction=" in msg and "metric_direction" in msg  # how to silence it


def test_fallback_uses_given_logger(caplog):
    log = logging.getLogger("my.run")
    with caplog.at_level(logging.WARNING, logger="my.run"):
        resolve_direction("val_loss", logger=log)
    assert caplog.records[0].name == "my.run"


def test_is_better():
    assert is_better(0.1, 0.2, "minimize")
    assert not is_better(0.2, 0.1, "minimize")
    assert is_better(0.2, 0.1, "max")
    assert not is_better(0.1, 0.1, "minimize")
    assert is_better(5.0, None, "minimize")
    assert not is_better(None, 5.0, "minimize")
    assert not is_better(math.nan, 5.0, "maximize")
    assert is_better(1.0, math.inf, "minimize")  # inf is not a usable value
    with pytest.raises(SettingsError):
        is_better(1.0, 2.0, "sideways")
    with pytest.raises(SettingsError):
        is_better(1.0, 2.0, None)


def test_best_index_ignores_none_and_prefers_first_tie():
    assert best_index([None, 0.5, 0.2, 0.2, None], "minimize") == 2
    assert best_index([None, 0.5, 0.9, 0.9], "maximize") == 2
    assert best_index([None, None], "minimize") is None
    assert best_index([], "maximize") is None
    assert best_index([math.nan, 3.0], "minimize") == 1
