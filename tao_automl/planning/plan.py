"""The typed run plan: what :func:`tao_automl.planning.preparation.prepare`
returns and every later step (review, the driver, trials, evaluations) reads."""

from __future__ import annotations

from typing import Any

import attrs

__all__ = ["JobOptions"]


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
