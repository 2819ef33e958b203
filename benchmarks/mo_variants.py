"""Variants of the two-objective GP acquisition tried against ZDT1 (issue 18).

Each variant is a ``HVISampler`` (``algorithms/_gp_sampler.py``) whose
proposal step is replaced; everything else (start-up trials, encoding, the
GP and its priors, objectives normalised to [0, 1] by their observed range)
is the shipped sampler's.  Measured in ``benchmarks/RESULTS.md``
(multi-objective); none beat the shipped behaviour on ZDT1 by more than the
seed noise, so none is the default.

``python -m benchmarks.mo_variants VARIANT[,VARIANT...] [--seeds 10] [--problems zdt1,branin_currin]``
prints one line per problem and variant (median, mean, [min-max] hypervolume
after 30 trials); ``shipped`` is ``algorithm: bayesian`` itself.

* ``lin-ei``: random linear scalarisation (Paria et al. 2019), weights drawn
  from the simplex every step; per-objective GPs, expected improvement of
  ``w . f`` (its posterior is Gaussian: mean ``w . mu``, variance
  ``sum w_i^2 sd_i^2``) over the best observed ``w . f``;
* ``lin-ucb``: the same scalarisation, lower confidence bound ``w . mu - 2 sd``;
* ``lin-parego``: ParEGO with a linear instead of Chebyshev scalarisation
  (one GP on ``w . f``);
* ``mix``: alternate ``lin-ei`` and the shipped hypervolume improvement;
* ``hvi-lattice-2`` / ``hvi-lattice-3``: every 2nd / 3rd step ``lin-ei`` with
  ParEGO's weight lattice ``{0, 1/4, .., 1}`` (so the extremes of the front,
  one objective alone, get proposals); ``hvi-extremes-3``: every 3rd step one
  objective alone;
* ``hvi-convergence``: hypervolume improvement plus 0.1 x how far the
  optimistic prediction lies beyond the front;
* ``hvi-candidates``: 3000 + 3000 candidates and local refinement around the
  5 best instead of 1000 + 1000 and 1;
* ``hvi-ref-3``: reference point 3 (normalised) instead of 1.1;
  ``hvi-nadir``: reference 10 % past the front's own worst values (nadir);
* ``ehvi``: expected hypervolume improvement (Monte Carlo over 128 posterior
  draws, the 2-D improvement vectorised) instead of the improvement of the
  optimistic prediction; ``ehvi-nadir``: with the nadir reference.
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from typing import Any

import numpy as np
from optuna.trial import TrialState

from benchmarks.multi_objective import PROBLEMS, run
from tao_automl.algorithms import _gp_sampler as gp

VARIANTS: dict[str, dict[str, Any]] = {
    "shipped": {},
    "lin-ei": {"kind": "lin", "lin_every": 1},
    "lin-ucb": {"kind": "lin", "lin_every": 1, "ucb": 2.0},
    "lin-parego": {"kind": "parego-linear"},
    "mix": {"kind": "hvi", "lin_every": 2},
    "hvi-lattice-2": {"kind": "hvi", "lin_every": 2, "lattice": 4},
    "hvi-lattice-3": {"kind": "hvi", "lin_every": 3, "lattice": 4},
    "hvi-extremes-3": {"kind": "hvi", "lin_every": 3, "lattice": 1},
    "hvi-convergence": {"kind": "hvi", "conv": 0.1},
    "hvi-candidates": {"kind": "hvi", "ncand": 3000, "refine_k": 5},
    "hvi-ref-3": {"kind": "hvi", "ref": 3.0},
    "hvi-nadir": {"kind": "hvi", "nadir": 0.1},
    "ehvi": {"kind": "ehvi"},
    "ehvi-nadir": {"kind": "ehvi", "nadir": 0.1},
}


def hvi_2d(p: np.ndarray, front: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Hypervolume improvement of each row of ``p`` (n x 2, minimised) over
    ``front``, bounded by ``ref``: the area under the front's staircase."""
    q = front[np.lexsort((front[:, 1], front[:, 0]))] if len(front) else np.zeros((0, 2))
    keep, low = [], math.inf
    for r in q:
        if r[1] < low and r[0] < ref[0] and r[1] < ref[1]:
            keep.append(r)
            low = r[1]
    q = np.array(keep).reshape(-1, 2)
    left = np.concatenate([[-np.inf], q[:, 0]])
    right = np.concatenate([q[:, 0], [ref[0]]])
    level = np.concatenate([[ref[1]], q[:, 1]])
    w = np.clip(np.minimum(right[None, :], ref[0]) - np.maximum(left[None, :], p[:, :1]), 0.0, None)
    h = np.clip(level[None, :] - p[:, 1:2], 0.0, None)
    return (w * h).sum(1)


class VariantSampler(gp.HVISampler):
    def __init__(self, *, variant: dict[str, Any], **kw: Any) -> None:
        super().__init__(**kw)
        self.v = variant

    def sample_relative(self, study: Any, trial: Any, search_space: dict[str, Any]) -> dict[str, Any]:
        v = self.v
        if not v or len(study.directions) != 2 or not search_space:
            return super().sample_relative(study, trial, search_space)
        names = sorted(search_space)
        done = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
                if t.values is not None and all(n in t.params for n in names)]
        if len(done) < self._n_startup:
            return {}
        x = np.array([[self._encode(search_space[n], t.params[n]) for n in names] for t in done])
        signs = np.array([1.0 if d.name == "MINIMIZE" else -1.0 for d in study.directions])
        f = np.array([t.values for t in done], dtype=float) * signs
        lo, hi = f.min(axis=0), f.max(axis=0)
        f = (f - lo) / np.where(hi > lo, hi - lo, 1.0)
        rng = self._rng
        w = rng.dirichlet(np.ones(2))
        if v.get("lattice"):
            a = rng.integers(0, v["lattice"] + 1) / v["lattice"]
            w = np.array([a, 1.0 - a])
        if v["kind"] == "parego-linear":
            point = gp._propose(x, (f * w).sum(1), rng)
            return {n: self._decode(search_space[n], float(u)) for n, u in zip(names, point, strict=True)}
        kind = v["kind"]
        if v.get("lin_every") and len(done) % v["lin_every"] == 0:
            kind = "lin"
        nd = np.array([p for p in f if not any(np.all(q <= p) and np.any(q < p) for q in f)])
        gps = [gp._GP(x, f[:, i], rng) for i in range(2)]
        ref = np.full(2, v.get("ref", 1.1))
        if v.get("nadir"):
            ref = nd.max(0) + v["nadir"] * np.maximum(nd.max(0) - nd.min(0), 0.05)
        z = rng.standard_normal((128, 2))
        beta, conv = 1.0, v.get("conv", 0.0)

        def predict(c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            mus, sds = [], []
            for g in gps:
                mu, sd = g.predict(c)
                mus.append(mu * g.scale + g.mean)
                sds.append(sd * g.scale)
            return np.stack(mus, 1), np.stack(sds, 1)

        def score(c: np.ndarray) -> np.ndarray:
            mu, sd = predict(c)
            gap = np.min(mu[:, None, :] - beta * sd[:, None, :] - nd[None, :, :], axis=2).max(1)
            if kind == "lin":
                m, s = mu @ w, np.sqrt(np.maximum((sd * sd) @ (w * w), 1e-18))
                if v.get("ucb"):
                    return -(m - v["ucb"] * s)
                return np.log(s) + gp._log_h(((f * w).sum(1).min() - m) / s)
            if kind == "ehvi":
                draws = (mu[:, None, :] + sd[:, None, :] * z[None, :, :]).reshape(-1, 2)
                e = hvi_2d(draws, nd, ref).reshape(len(c), -1).mean(1)
                gap_mu = np.min(mu[:, None, :] - nd[None, :, :], axis=2).max(1)
                return np.where(e > 0, e, -np.maximum(gap_mu, 0.0) - 1e-9)
            imp = hvi_2d(mu - beta * sd, nd, ref)  # the shipped acquisition, plus an optional convergence term
            return np.where(gap < 0, imp + conv * -gap, -np.maximum(gap, 0.0))

        d, ncand = x.shape[1], v.get("ncand", 1000)
        anchor = x[[int(np.argmin(np.abs(f - p).sum(axis=1))) for p in nd]]
        cands = np.vstack([rng.random((ncand, d)),
                           np.clip(anchor[rng.integers(0, len(anchor), ncand)]
                                   + rng.normal(0.0, 0.05, (ncand, d)), 0.0, 1.0)])
        s = score(cands)
        found = []
        for i in np.argsort(-s)[: v.get("refine_k", 1)]:
            best, best_s = cands[i], float(s[i])
            for step in (0.02, 0.005):
                local = np.clip(best + rng.normal(0.0, step, (250, d)), 0.0, 1.0)
                sl = score(local)
                if float(sl.max()) > best_s:
                    best, best_s = local[int(np.argmax(sl))], float(sl.max())
            found.append((best_s, best))
        point = max(found, key=lambda t: t[0])[1]
        return {n: self._decode(search_space[n], float(u)) for n, u in zip(names, point, strict=True)}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("variants", help=",".join(VARIANTS))
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--trials", type=int, default=30)
    ap.add_argument("--problems", default=",".join(PROBLEMS))
    args = ap.parse_args(argv)
    startup = min(10, max(3, args.trials // 5))
    for problem in args.problems.split(","):
        for name in args.variants.split(","):
            t = time.time()
            hvs = [run(problem, "mo-bayesian", seed, args.trials,
                       sampler=VariantSampler(variant=VARIANTS[name], seed=seed, n_startup_trials=startup))
                   for seed in range(args.seeds)]
            print(f"{problem:14s} {name:16s} median {statistics.median(hvs):.2f} mean {statistics.mean(hvs):.2f} "
                  f"[{min(hvs):.2f}-{max(hvs):.2f}] ({len(hvs)} seeds, {time.time() - t:.0f}s)", flush=True)


if __name__ == "__main__":
    main()
