"""The authors' DEHB 0.1.2 on the same MF-Hartmann functions, for a direct
reference next to :mod:`benchmarks.mf_hartmann` (our DE core).

DEHB 0.1.2 pins ``numpy<2`` and pulls dask/distributed, so it cannot live in
our environment (numpy 2.x in ``constraints.txt``); run this file with the
Python of a throwaway venv::

    python -m venv /tmp/dehbv && /tmp/dehbv/bin/pip install dehb==0.1.2
    /tmp/dehbv/bin/python benchmarks/dehb_reference.py --seeds 10

It imports only ``benchmarks/mf_hartmann.py``'s function (numpy), never
tao_automl.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from mf_hartmann import OPTIMA, PUBLISHED, Z_MAX, Z_MIN, mf_hartmann  # noqa: E402


def run(dims: int, seed: int, fevals: int) -> float:
    from dehb import DEHB

    def objective(x, fidelity, **kwargs):
        return {"fitness": mf_hartmann(list(x), int(fidelity)), "cost": float(fidelity)}

    with tempfile.TemporaryDirectory() as out:
        opt = DEHB(f=objective, dimensions=dims, min_fidelity=Z_MIN, max_fidelity=Z_MAX, eta=3, n_workers=1,
                   output_path=out, seed=seed, log_level="ERROR")
        traj, _, _ = opt.run(fevals=fevals)
    return float(min(traj))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--fevals", type=int, default=300)
    args = ap.parse_args()
    for dims in (3, 6):
        best = [run(dims, s, args.fevals) for s in range(args.seeds)]
        print(f"DEHB 0.1.2 on MF-Hartmann-{dims}: median {statistics.median(best):.3f}, mean "
              f"{statistics.fmean(best):.3f} [{min(best):.3f}, {max(best):.3f}] over {args.seeds} seeds x "
              f"{args.fevals} evaluations; published {PUBLISHED[dims]}; optimum {OPTIMA[dims]}")


if __name__ == "__main__":
    main()
