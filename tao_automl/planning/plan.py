"""The typed run plan: what :func:`tao_automl.planning.preparation.prepare`
returns and every later step (review, the driver, trials, evaluations) reads.

:class:`RunPlan` is frozen: nothing changes a plan after the checks passed; a
step that needs a different one makes a new one (``attrs.evolve``, as a resume
does with the saved search space)."""

from __future__ import annotations

from typing import Any

import attrs

from tao_automl.algorithms import AlgorithmSpec
from tao_automl.config.settings import AutoMLSettings
from tao_automl.planning.checks import DatasetPathCheck
from tao_automl.search import SearchSpace
from tao_automl.skill import SkillBundle

__all__ = ["JobOptions", "RunPlan"]


@attrs.frozen(kw_only=True)
class JobOptions:
    """Platform-agnostic launch shape shared by every job of a run."""

    image: str | None = None
    gpu_count: int = 0
    gpu_ids: tuple[int, ...] = ()
    num_nodes: int = 1
    env: dict[str, str] = attrs.field(factory=dict)
    secret_env: tuple[str, ...] = ()
    timeout_s: float | None = None
    options: dict[str, Any] = attrs.field(factory=dict)


@attrs.frozen(kw_only=True)
class RunPlan:
    """A validated run plan: every input checked, nothing launched yet."""

    skill: SkillBundle
    action: str
    settings: AutoMLSettings
    algorithm: AlgorithmSpec
    space: SearchSpace
    metric: str
    direction: str
    #: Ray Tune's mode for ``direction`` ("min"/"max")
    mode: str
    fidelity_key: str | None
    max_epochs: int | None
    batch_key: str | None
    shard_count: int
    overrides: dict[str, Any]
    dataset_uris: dict[str, Any]
    base_checkpoint: str | None
    #: a :class:`~tao_automl.platforms.base.PlatformBackend` (a protocol: any object with its methods)
    backend: Any
    #: what re-creates the backend in a Ray worker (a name and kwargs, or the object)
    backend_ref: Any
    job_options: JobOptions
    initial_points: list[dict[str, Any]]
    initial_values: list[dict[str, Any]]
    #: ``queue_rest`` algorithms (random): the configurations after the initial batch, in order
    queued_points: list[dict[str, Any]] = attrs.field(factory=list)
    blockers: tuple[str, ...] = attrs.field(converter=tuple)
    notes: tuple[str, ...] = attrs.field(converter=tuple)
    evaluate_action: str | None
    seed: int
    checkpoint_epoch_offset: int | None = None  # None: inferred per job (checkpoints.infer_epoch_offset)
    path_checks: tuple[DatasetPathCheck, ...] = attrs.field(default=(), converter=tuple)  # one per dataset path
    #: multi-objective runs: the objectives (config.objectives.Objective); ``metric`` is then
    #: their weighted score (config.objectives.SCORE), maximized.  Empty: one metric.
    objectives: tuple[Any, ...] = attrs.field(default=(), converter=tuple)
    #: ``select_best`` (config.objectives.SelectRule) or None: best by the score
    select_rule: Any = None
