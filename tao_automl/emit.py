"""Emit tagged metric lines from a training script.

A training job that prints lines such as::

    [tao-automl-metric] {"epoch": 3, "val_loss": 0.41}

hands its metrics to tao_automl exactly, with no log scraping.  This module has
no dependencies beyond the standard library so it can run inside any image; a
script that cannot import tao_automl can print the same line itself.
"""

from __future__ import annotations

import json
import sys
from typing import Any, TextIO

__all__ = ["METRIC_TAG", "format_metric_line", "emit_metric"]

METRIC_TAG = "[tao-automl-metric]"


def _plain(value: Any) -> Any:
    """Turn numpy scalars and similar number-likes into plain Python numbers."""
    if isinstance(value, bool | int | float | str) or value is None:
        return value
    item = getattr(value, "item", None)
    if callable(item):
        return item()
    try:
        return float(value)
    except (TypeError, ValueError):
        return str(value)


def format_metric_line(*, epoch: int | None = None, step: int | None = None, **values: Any) -> str:
    """Return the tagged line (without newline) for ``values``.

    ``epoch`` and ``step`` come first when given.  NaN/inf are written as JSON's
    ``NaN``/``Infinity`` so a diverged run is visible (the reader rejects them).
    """
    payload: dict[str, Any] = {}
    if epoch is not None:
        payload["epoch"] = int(epoch)
    if step is not None:
        payload["step"] = int(step)
    for key, value in values.items():
        payload[str(key)] = _plain(value)
    return f"{METRIC_TAG} {json.dumps(payload)}"


def emit_metric(
    *, epoch: int | None = None, step: int | None = None, file: TextIO | None = None, **values: Any
) -> str:
    """Print one tagged metric line and flush it at once.

    >>> emit_metric(epoch=3, val_loss=0.41)  # doctest: +SKIP
    [tao-automl-metric] {"epoch": 3, "val_loss": 0.41}

    Returns the printed line (without newline).
    """
    line = format_metric_line(epoch=epoch, step=step, **values)
    out = file if file is not None else sys.stdout
    out.write(line + "\n")
    out.flush()
    return line
