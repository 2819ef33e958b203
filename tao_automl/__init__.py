"""tao_automl: hyperparameter optimization for NVIDIA TAO model skills.

Public API (re-exported lazily so ``import tao_automl`` stays cheap and never
imports Ray or WandB)::

    from tao_automl import AutoMLRunner, AutoMLSettings, load_skill, errors
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "AutoMLRunner": "tao_automl.runner",
    "AutoMLSettings": "tao_automl.config.settings",
    "AutoMLResult": "tao_automl.reporting.results",
    "format_result": "tao_automl.reporting.results",
    "load_skill": "tao_automl.skill",
    "SkillBundle": "tao_automl.skill",
    "load_schema": "tao_automl.schema",
    "build_search_space": "tao_automl.search",
    "SearchSpace": "tao_automl.search",
    "SpecBuilder": "tao_automl.spec",
    "get_backend": "tao_automl.platforms",
    "JobRequest": "tao_automl.platforms.base",
    "JobHandle": "tao_automl.platforms.base",
    "JobStatus": "tao_automl.platforms.base",
    "PlatformBackend": "tao_automl.platforms.base",
    "emit_metric": "tao_automl.emit",
    "ALGORITHMS": "tao_automl.algorithms",
    "secret": "tao_automl.config.secrets",
    "SecretRef": "tao_automl.config.secrets",
}

__all__ = ["__version__", "errors", *_EXPORTS]


def __getattr__(name: str) -> Any:
    if name == "errors":
        return importlib.import_module("tao_automl.errors")
    mod = _EXPORTS.get(name)
    if mod is None:
        raise AttributeError(f"module 'tao_automl' has no attribute {name!r}")
    return getattr(importlib.import_module(mod), name)


def __dir__() -> list[str]:
    return sorted(__all__)
