"""Benchmark objectives (standard library only, so the job needs nothing else).

Parameters live on the unit hypercube ``[0, 1]^d`` and are scaled to each
function's standard domain:

* Branin (d=2): x1 = 15 u1 - 5, x2 = 15 u2; global minimum 0.397887.
* Hartmann-6 (d=6): the unit hypercube already; global minimum -3.32237.

:func:`observe` turns a true value into what a job reports at one epoch:
in the multi-fidelity form (``fidelity_epochs`` R > 0) the value at epoch e
carries a bias and extra noise that both shrink as ``(1 - e/R)`` and vanish
at e = R, like a training curve that converges to its final score; the bias
is partly configuration-dependent, so low fidelities mis-rank some
configurations.  ``noise_std`` adds constant observation noise (the noisy
variant).  Noise is a deterministic function of (seed, configuration,
epoch), so a resumed job reports exactly what an uninterrupted one would.
"""

from __future__ import annotations

import hashlib
import math
import random

__all__ = ["FUNCTIONS", "OPTIMA", "DIMS", "DEFAULTS", "MULTI", "true_value", "observe", "branin", "hartmann6",
           "zdt1", "branin_currin"]

_A = ((10.0, 3.0, 17.0, 3.5, 1.7, 8.0), (0.05, 10.0, 17.0, 0.1, 8.0, 14.0),
      (3.0, 3.5, 1.7, 10.0, 17.0, 8.0), (17.0, 8.0, 0.05, 10.0, 0.1, 14.0))
_P = ((0.1312, 0.1696, 0.5569, 0.0124, 0.8283, 0.5886), (0.2329, 0.4135, 0.8307, 0.3736, 0.1004, 0.9991),
      (0.2348, 0.1451, 0.3522, 0.2883, 0.3047, 0.6650), (0.4047, 0.8828, 0.8732, 0.5743, 0.1091, 0.0381))
_ALPHA = (1.0, 1.2, 3.0, 3.2)


def branin(u: list[float]) -> float:
    """Branin on the unit square (scaled to x1 in [-5, 10], x2 in [0, 15])."""
    x1, x2 = 15.0 * u[0] - 5.0, 15.0 * u[1]
    b, c, t = 5.1 / (4 * math.pi**2), 5.0 / math.pi, 1.0 / (8 * math.pi)
    return (x2 - b * x1**2 + c * x1 - 6.0) ** 2 + 10.0 * (1 - t) * math.cos(x1) + 10.0


def hartmann6(u: list[float]) -> float:
    """Hartmann-6 on the unit hypercube."""
    total = 0.0
    for i in range(4):
        inner = sum(_A[i][j] * (u[j] - _P[i][j]) ** 2 for j in range(6))
        total += _ALPHA[i] * math.exp(-inner)
    return -total


def zdt1(u: list[float]) -> tuple[float, float]:
    """ZDT1 (both minimized) on [0, 1]^6."""
    f1 = u[0]
    g = 1 + 9 * sum(u[1:]) / (len(u) - 1)
    return f1, g * (1 - math.sqrt(f1 / g))


def branin_currin(u: list[float]) -> tuple[float, float]:
    """Branin and Currin (both minimized) on the unit square (BoTorch's BraninCurrin)."""
    x0, x1 = u
    currin = (1 - math.exp(-1 / (2 * max(x1, 1e-12)))) * (2300 * x0**3 + 1900 * x0**2 + 2092 * x0 + 60) \
        / (100 * x0**3 + 500 * x0**2 + 4 * x0 + 20)
    return branin(u), currin


#: Two-objective functions: the job reports val_loss (the first) and f2 (the second).
MULTI = {"zdt1": (zdt1, 6), "branin_currin": (branin_currin, 2)}

FUNCTIONS = {"branin": branin, "hartmann6": hartmann6}
DIMS = {"branin": 2, "hartmann6": 6}
OPTIMA = {"branin": 0.397887, "hartmann6": -3.32237}
# Per-function scales: (learning-curve offset at epoch 0, config-dependent
# bias amplitude, extra low-fidelity noise, noisy-variant observation noise).
DEFAULTS = {
    "branin": {"curve": 30.0, "bias": 20.0, "fidelity_noise": 10.0, "noise": 2.0},
    "hartmann6": {"curve": 1.0, "bias": 0.3, "fidelity_noise": 0.15, "noise": 0.1},
}


def true_value(function: str, u: list[float]) -> float:
    """The noise-free objective at ``u`` (the first DIMS[function] entries)."""
    return FUNCTIONS[function](list(u)[: DIMS[function]])


def _gauss(seed: int, u: list[float], epoch: int, stream: str) -> float:
    key = f"{seed}|{stream}|{epoch}|" + ",".join(f"{x:.12g}" for x in u)
    digest = hashlib.blake2b(key.encode(), digest_size=8).digest()
    return random.Random(int.from_bytes(digest, "little")).gauss(0.0, 1.0)


def _bias_shape(u: list[float]) -> float:
    """A smooth configuration-dependent term in [-1, 1]."""
    s = sum((j + 1) * x for j, x in enumerate(u))
    return math.sin(2.0 * math.pi * s) * math.cos(math.pi * u[0])


def observe(function: str, u: list[float], epoch: int, *, fidelity_epochs: int = 0,
            noise_std: float = 0.0, seed: int = 0, scales: dict | None = None) -> float:
    """What a job reports at ``epoch`` (1-based)."""
    u = list(u)[: DIMS[function]]
    sc = {**DEFAULTS[function], **(scales or {})}
    value = true_value(function, u)
    if fidelity_epochs and fidelity_epochs > 0:
        gap = max(0.0, 1.0 - min(epoch, fidelity_epochs) / fidelity_epochs)
        value += gap * (sc["curve"] + sc["bias"] * _bias_shape(u))
        value += gap * sc["fidelity_noise"] * _gauss(seed, u, epoch, "fidelity")
    if noise_std:
        value += noise_std * _gauss(seed, u, epoch, "noise")
    return value
