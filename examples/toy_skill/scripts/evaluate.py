"""Evaluate action of the toy model skill.

    python scripts/evaluate.py --config spec.yaml

Loads ``evaluate.checkpoint``, measures ``val_loss`` / ``val_accuracy`` on the
validation split (``dataset.val_path`` or the synthetic split from
``dataset.seed``), prints them (tagged line) and writes ``results.json`` and a
TAO-style ``status.json`` line with ``kpi`` into ``results_dir``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import toy_core as core  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", "-e", required=True, help="spec file (YAML/JSON)")
    args = parser.parse_args(argv)
    spec = core.load_spec(args.config)
    ds, ev = core.section(spec, "dataset"), core.section(spec, "evaluate")
    results_dir = spec.get("results_dir") or ev.get("results_dir") or "."
    os.makedirs(results_dir, exist_ok=True)
    checkpoint = ev.get("checkpoint") or ""
    if not checkpoint:
        raise SystemExit(
            "spec error: key 'evaluate.checkpoint' is empty; expected a checkpoint file"
        )
    params, _, epoch, step, activation = core.load_checkpoint(checkpoint)
    _, _, xv, yv = core.load_data(ds)
    val_loss, val_acc = core.evaluate(params, xv, yv, activation)
    print(
        f"Evaluated {checkpoint} (epoch {epoch}): val_loss={val_loss:.5f} val_accuracy={val_acc:.4f}"
    )
    core.emit(val_loss=val_loss, val_accuracy=val_acc)
    result = {
        "val_loss": val_loss,
        "val_accuracy": val_acc,
        "checkpoint": checkpoint,
        "checkpoint_epoch": epoch,
        "checkpoint_step": step,
        "num_samples": int(len(yv)),
    }
    with open(os.path.join(results_dir, "results.json"), "w", encoding="utf-8") as f:
        json.dump(result, f, indent=2)
    core.StatusFile(results_dir).write(
        "Evaluation finished successfully.",
        status="SUCCESS",
        kpi={"val_loss": val_loss, "val_accuracy": val_acc},
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
