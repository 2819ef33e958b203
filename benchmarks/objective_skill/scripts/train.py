"""Train action of the benchmark objective skill.

    python scripts/train.py --config spec.json

"Trains" ``train.num_epochs`` epochs of a closed-form objective (Branin or
Hartmann-6, chosen by ``objective.function``) at the point ``params.x1..x6``
in the unit hypercube.  Each epoch prints one tagged metric line::

    [tao-automl-metric] {"epoch": 3, "val_loss": 1.92, "true_value": 0.52}

``val_loss`` is what the search sees (biased/noisy at low epochs in the
multi-fidelity form, noisy in the noisy variant); ``true_value`` is the
noise-free objective the benchmark scores.  Per epoch it also writes a tiny
``model_epoch_XXX_step_XXXXX.pth`` checkpoint into ``results_dir`` so
Hyperband/PBT can pause and resume; ``train.resume_training_checkpoint_path``
continues after the checkpoint's epoch.  When the environment variable
``BENCH_EPOCH_LOG`` names a file, every epoch also appends one JSON line
(time, point, epoch, values) to it: the benchmark's driver-independent record
of what was evaluated and how many epochs were spent.  Standard library only.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import objectives  # noqa: E402

TAG = "[tao-automl-metric]"


def _multi(function: str, spec: dict) -> int:
    """A two-objective function: every epoch reports val_loss (f1) and f2."""
    fn, dims = objectives.MULTI[function]
    params, train = spec.get("params", {}), spec.get("train", {})
    u = [float(params.get(f"x{i + 1}", 0.5)) for i in range(dims)]
    f1, f2 = fn(u)
    results_dir = spec.get("results_dir") or "."
    os.makedirs(results_dir, exist_ok=True)
    num_epochs = int(train.get("num_epochs", 1))
    for epoch in range(1, num_epochs + 1):
        with open(os.path.join(results_dir, f"model_epoch_{epoch:03d}_step_{epoch:05d}.pth"), "w") as fh:
            json.dump({"epoch": epoch, "u": u}, fh)
        print(f"{TAG} " + json.dumps({"epoch": epoch, "val_loss": f1, "f2": f2}), flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="benchmark objective job")
    parser.add_argument("--config", "-e", required=True, help="spec file (JSON)")
    args = parser.parse_args(argv)
    with open(args.config) as fh:
        spec = json.load(fh)
    obj, params, train = spec.get("objective", {}), spec.get("params", {}), spec.get("train", {})
    function = str(obj.get("function", "branin"))
    if function in objectives.MULTI:
        return _multi(function, spec)
    if function not in objectives.FUNCTIONS:
        print(f"spec error: objective.function={function!r}; expected one of "
              f"{sorted(objectives.FUNCTIONS)}", file=sys.stderr)
        return 2
    dims = objectives.DIMS[function]
    u = [float(params.get(f"x{i + 1}", 0.5)) for i in range(dims)]
    if any(not 0.0 <= x <= 1.0 for x in u):
        print(f"spec error: params.x1..x{dims} must lie in [0, 1]; got {u}", file=sys.stderr)
        return 2
    num_epochs = int(train.get("num_epochs", 1))
    fidelity = int(obj.get("fidelity_epochs", 0) or 0)
    noise = float(obj.get("noise_std", 0.0) or 0.0)
    seed = int(obj.get("seed", 0))
    sleep_s = float(train.get("epoch_sleep_s", 0.0) or 0.0)
    results_dir = spec.get("results_dir") or "."
    os.makedirs(results_dir, exist_ok=True)

    start = 0
    resume = train.get("resume_training_checkpoint_path") or ""
    if resume:
        with open(resume) as fh:
            start = int(json.load(fh)["epoch"])
        print(f"Resuming from {resume} (epoch {start})", flush=True)
    truth = objectives.true_value(function, u)
    value = truth
    epoch_log = os.environ.get("BENCH_EPOCH_LOG")
    for epoch in range(start + 1, num_epochs + 1):
        if sleep_s:
            time.sleep(sleep_s)
        value = objectives.observe(function, u, epoch, fidelity_epochs=fidelity, noise_std=noise, seed=seed)
        ckpt = os.path.join(results_dir, f"model_epoch_{epoch:03d}_step_{epoch:05d}.pth")
        with open(ckpt, "w") as fh:
            json.dump({"epoch": epoch, "u": u}, fh)
        # A TAO-style text line (what log-scraping runners read) and the tagged line.
        print(f"Epoch {epoch}/{num_epochs}: val_loss: {value!r}")
        print(f"{TAG} " + json.dumps({"epoch": epoch, "val_loss": value, "true_value": truth}), flush=True)
        if epoch_log:
            line = json.dumps({"t": time.time(), "u": u, "epoch": epoch, "val_loss": value,
                               "true_value": truth, "pid": os.getpid(), "resumed_from": start})
            with open(epoch_log, "a") as fh:  # one short O_APPEND write per epoch
                fh.write(line + "\n")
    with open(os.path.join(results_dir, "results.json"), "w") as fh:
        json.dump({"val_loss": value, "true_value": truth, "epochs": num_epochs}, fh)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
