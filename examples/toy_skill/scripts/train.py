"""Train action of the toy model skill.

    python scripts/train.py --config spec.yaml

Reads the spec, trains ``train.num_epochs`` epochs of a small numpy MLP, and per
epoch: prints a tagged metric line, appends a TAO-style ``status.json`` line and
(every ``train.checkpoint_interval`` epochs, and at the end) writes
``model_epoch_XXX_step_YYYYY.pth`` plus the ``model_latest.pth`` link into
``results_dir``.  ``train.resume_training_checkpoint_path`` continues from the
epoch after the checkpoint's.  Epochs count from 1 in metrics and file names.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402
import toy_core as core  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", "-e", required=True, help="spec file (YAML/JSON)")
    args = parser.parse_args(argv)
    spec = core.load_spec(args.config)
    ds, model, train = (
        core.section(spec, "dataset"),
        core.section(spec, "model"),
        core.section(spec, "train"),
    )
    results_dir = spec.get("results_dir") or train.get("results_dir") or "."
    os.makedirs(results_dir, exist_ok=True)

    num_epochs = int(train.get("num_epochs", 10))
    batch_size = int(train.get("batch_size", 64))
    lr = float(train.get("lr", 0.05))
    momentum = float(train.get("momentum", 0.9))
    weight_decay = float(train.get("weight_decay", 1e-4))
    seed = int(train.get("seed", 1234))
    interval = max(1, int(train.get("checkpoint_interval", 1)))
    epoch_sleep = float(train.get("epoch_sleep_s", 0.0))
    first = int(train.get("checkpoint_first_epoch", 1))  # 0: TAO PyTorch's numbering
    resume = train.get("resume_training_checkpoint_path") or ""
    activation = str(model.get("activation", "relu"))
    hidden = int(model.get("hidden_size", 32))
    if batch_size < 1 or hidden < 1 or num_epochs < 1:
        raise SystemExit(
            "spec error: train.batch_size, model.hidden_size and train.num_epochs must be >= 1; "
            f"got {batch_size}, {hidden}, {num_epochs}"
        )

    x, y, xv, yv = core.load_data(ds)
    n_classes = int(max(y.max(), yv.max()) + 1)
    status = core.StatusFile(results_dir)
    if resume:
        params, velocity, start, step, activation = core.load_checkpoint(resume)
        print(f"Resuming training from {resume} (epoch {start}, step {step})", flush=True)
    else:
        params = core.init_params(seed, x.shape[1], hidden, n_classes)
        velocity = {k: np.zeros_like(v) for k, v in params.items()}
        start, step = 0, 0
    status.write("Starting Training Loop.", status="STARTED")
    print(f"Training {num_epochs} epochs on {len(x)} samples ({len(xv)} validation)", flush=True)

    for epoch in range(start + 1, num_epochs + 1):
        t0 = time.time()
        train_loss, steps = core.train_epoch(
            params,
            velocity,
            x,
            y,
            epoch=epoch,
            seed=seed,
            batch_size=batch_size,
            lr=lr,
            momentum=momentum,
            weight_decay=weight_decay,
            activation=activation,
        )
        step += steps
        core.sleep(epoch_sleep)
        val_loss, val_acc = core.evaluate(params, xv, yv, activation)
        elapsed = time.time() - t0
        print(
            f"Epoch {epoch}/{num_epochs}: train_loss={train_loss:.5f} "
            f"val_loss={val_loss:.5f} val_accuracy={val_acc:.4f}",
            flush=True,
        )
        core.emit(
            epoch=epoch, step=step, val_loss=val_loss, val_accuracy=val_acc, train_loss=train_loss
        )
        status.write(
            "Training loop in progress",
            epoch=epoch,
            max_epoch=num_epochs,
            time_per_epoch=core.fmt_seconds(elapsed),
            eta=core.fmt_seconds(elapsed * (num_epochs - epoch)),
            kpi={"val_loss": val_loss, "val_accuracy": val_acc, "train_loss": train_loss},
        )
        if epoch % interval == 0 or epoch == num_epochs:
            name = core.checkpoint_name(epoch - 1 + first, step)
            core.save_checkpoint(
                os.path.join(results_dir, name),
                params,
                velocity,
                epoch=epoch,
                step=step,
                activation=activation,
            )
            core.link_latest(results_dir, name)
    status.write("Training finished successfully.", status="SUCCESS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
