"""Contract suites for third-party platform backends and search algorithms.

Like ``optuna.testing``, these are shipped in the package so that the author
of a backend or an algorithm can run the same checks the built-in ones pass:

* :mod:`tao_automl.testing.platform`: :class:`~tao_automl.testing.platform.PlatformContract`,
  a pytest test class to subclass with a harness that builds your backend.
* :mod:`tao_automl.testing.algorithm`: :class:`~tao_automl.testing.algorithm.AlgorithmContract`,
  checks that a registry entry builds without running, then runs it end to end
  on :data:`OBJECTIVE_SKILL`, a tiny built-in skill whose job computes a
  closed-form objective per epoch.
* :mod:`tao_automl.testing.llm_server`: a scripted OpenAI-compatible server
  (for the LLM-guided algorithms' tests and the benchmarks).

The two suites import pytest; install the ``test`` extra
(``pip install 'tao-automl[test]'``).  This module itself does not.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["OBJECTIVE_SKILL"]

#: A tiny ``python_script`` model skill (train + evaluate actions, per-epoch
#: metric ``val_loss``, checkpoints, resume) whose job computes a closed-form
#: objective of ``train.lr`` and ``train.momentum``: no data, no GPU, well
#: under a second per epoch.  Pass it as ``AutoMLRunner(skill_dir=OBJECTIVE_SKILL)``.
OBJECTIVE_SKILL = Path(__file__).resolve().parent / "objective_skill"
