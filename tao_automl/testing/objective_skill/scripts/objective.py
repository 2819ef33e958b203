"""Closed-form objective job: ``python objective.py train|evaluate SPEC.json``.

train: for each epoch, val_loss = (log10(lr) + 2)^2 + (momentum - 0.5)^2
+ depth / 10 + 1 / epoch; prints a tagged metric line, writes
``model_epoch_XXX.pth`` (JSON) into results_dir, resumes after the epoch of
``train.resume_training_checkpoint_path``.  evaluate: reports the value
stored in ``evaluate.checkpoint`` (or, without one, the untrained value at
the spec template's defaults) in ``results.json``.  Standard library only.
"""

import json
import math
import os
import sys
import time


def objective(lr, momentum, depth, epoch):
    return (math.log10(lr) + 2) ** 2 + (momentum - 0.5) ** 2 + depth / 10 + 1 / max(epoch, 1)


def main(action, config):
    with open(config, encoding="utf-8") as f:
        spec = json.load(f)
    out = spec.get("results_dir") or "."
    os.makedirs(out, exist_ok=True)
    if action == "evaluate":
        ckpt = spec.get("evaluate", {}).get("checkpoint") or ""
        if ckpt:
            with open(ckpt, encoding="utf-8") as f:
                value = json.load(f)["val_loss"]
        else:
            value = objective(0.001, 0.9, 2, 0)
        with open(os.path.join(out, "results.json"), "w", encoding="utf-8") as f:
            json.dump({"val_loss": value, "checkpoint": ckpt}, f)
        print("[tao-automl-metric] " + json.dumps({"val_loss": value}), flush=True)
        return 0
    train, model = spec.get("train", {}), spec.get("model", {})
    lr, momentum, depth = float(train["lr"]), float(train["momentum"]), int(model.get("depth", 0))
    start = 1
    if train.get("resume_training_checkpoint_path"):
        with open(train["resume_training_checkpoint_path"], encoding="utf-8") as f:
            start = json.load(f)["epoch"] + 1
        print(f"resuming at epoch {start}", flush=True)
    for epoch in range(start, int(train["num_epochs"]) + 1):
        time.sleep(float(train.get("epoch_sleep_s") or 0))
        value = objective(lr, momentum, depth, epoch)
        with open(os.path.join(out, f"model_epoch_{epoch:03d}.pth"), "w", encoding="utf-8") as f:
            json.dump({"epoch": epoch, "val_loss": value, "lr": lr, "momentum": momentum, "depth": depth}, f)
        print("[tao-automl-metric] " + json.dumps({"epoch": epoch, "val_loss": value}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
