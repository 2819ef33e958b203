"""Numpy-only core of the toy model skill: data, MLP, training epoch, checkpoints,
TAO-style status.json lines and tagged metric lines.

Runs in any image with Python 3.9+ and numpy (PyYAML for YAML specs); it does
not import tao_automl.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import sys
import time
from typing import Any

import numpy as np

METRIC_TAG = "[tao-automl-metric]"
ACTIVATIONS = ("relu", "tanh", "sigmoid")


# -- spec --------------------------------------------------------------------
def load_spec(path: str) -> dict[str, Any]:
    """Read the YAML (or JSON) spec file the launcher wrote."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    try:
        import yaml
    except ImportError:  # JSON is valid YAML; accept it without PyYAML
        return json.loads(text)
    return yaml.safe_load(text) or {}


def section(spec: dict[str, Any], name: str) -> dict[str, Any]:
    value = spec.get(name) or {}
    if not isinstance(value, dict):
        raise SystemExit(f"spec error: key '{name}' must be a mapping, got {value!r}")
    return value


# -- data --------------------------------------------------------------------
def synthetic_data(seed: int, num_samples: int, num_features: int, num_classes: int, noise: float):
    """A deterministic, mildly non-linear classification problem."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(num_classes, num_features)) * 1.5
    y = rng.integers(0, num_classes, size=num_samples)
    x = centers[y] + rng.normal(size=(num_samples, num_features)) * noise
    mix = rng.normal(size=(num_features, num_features)) / math.sqrt(num_features)
    x = np.tanh(x @ mix) * 2.0 + 0.3 * x
    return x.astype(np.float64), y.astype(np.int64)


def load_npz(path: str):
    with np.load(path, allow_pickle=False) as d:
        return np.asarray(d["x"], dtype=np.float64), np.asarray(d["y"], dtype=np.int64)


def load_data(ds: dict[str, Any]):
    """(x_train, y_train, x_val, y_val): from ``train_path``/``val_path`` (.npz with
    ``x``, ``y``) when given, else synthetic from ``dataset.seed``."""
    train_path, val_path = ds.get("train_path") or "", ds.get("val_path") or ""
    if train_path:
        x, y = load_npz(train_path)
        if val_path:
            xv, yv = load_npz(val_path)
        else:
            cut = int(len(x) * 0.8)
            x, y, xv, yv = x[:cut], y[:cut], x[cut:], y[cut:]
        return x, y, xv, yv
    x, y = synthetic_data(
        int(ds.get("seed", 42)),
        int(ds.get("num_samples", 1500)),
        int(ds.get("num_features", 16)),
        int(ds.get("num_classes", 4)),
        float(ds.get("noise", 1.0)),
    )
    cut = int(len(x) * 0.75)
    xt, yt, xv, yv = x[:cut], y[:cut], x[cut:], y[cut:]
    if val_path:
        xv, yv = load_npz(val_path)
    return xt, yt, xv, yv


# -- model -------------------------------------------------------------------
def init_params(seed: int, n_in: int, hidden: int, n_out: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng([seed, 0])
    return {
        "w1": rng.normal(size=(n_in, hidden)) * math.sqrt(2.0 / n_in),
        "b1": np.zeros(hidden),
        "w2": rng.normal(size=(hidden, n_out)) * math.sqrt(1.0 / hidden),
        "b2": np.zeros(n_out),
    }


def _act(z: np.ndarray, kind: str) -> tuple[np.ndarray, np.ndarray]:
    """Activation and its derivative."""
    if kind == "relu":
        return np.maximum(z, 0.0), (z > 0).astype(z.dtype)
    if kind == "tanh":
        a = np.tanh(z)
        return a, 1.0 - a * a
    if kind == "sigmoid":
        a = 1.0 / (1.0 + np.exp(-np.clip(z, -60, 60)))
        return a, a * (1.0 - a)
    raise SystemExit(
        f"spec error: key 'model.activation' value {kind!r}; expected one of {ACTIVATIONS}"
    )


def forward(params, x, activation):
    with np.errstate(all="ignore"):
        z1 = x @ params["w1"] + params["b1"]
        h, dh = _act(z1, activation)
        logits = h @ params["w2"] + params["b2"]
        shifted = logits - logits.max(axis=1, keepdims=True)
        logp = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return h, dh, logp


def evaluate(params, x, y, activation) -> tuple[float, float]:
    """(mean cross-entropy, accuracy)."""
    _, _, logp = forward(params, x, activation)
    loss = float(-logp[np.arange(len(y)), y].mean())
    acc = float((logp.argmax(axis=1) == y).mean())
    return loss, acc


def train_epoch(
    params, velocity, x, y, *, epoch, seed, batch_size, lr, momentum, weight_decay, activation
):
    """One epoch of mini-batch SGD with momentum; the shuffle depends only on
    (seed, epoch) so a resumed run replays the same stream.  Returns
    (mean train loss, number of steps)."""
    order = np.random.default_rng([seed, epoch]).permutation(len(x))
    losses, steps = [], 0
    with np.errstate(all="ignore"):
        for start in range(0, len(x), batch_size):
            idx = order[start : start + batch_size]
            xb, yb = x[idx], y[idx]
            h, dh, logp = forward(params, xb, activation)
            losses.append(-logp[np.arange(len(yb)), yb].mean())
            g = np.exp(logp)
            g[np.arange(len(yb)), yb] -= 1.0
            g /= len(yb)
            grads = {"w2": h.T @ g, "b2": g.sum(axis=0)}
            gh = (g @ params["w2"].T) * dh
            grads["w1"] = xb.T @ gh
            grads["b1"] = gh.sum(axis=0)
            for k in params:
                if k.startswith("w"):
                    grads[k] = grads[k] + weight_decay * params[k]
                velocity[k] = momentum * velocity[k] - lr * grads[k]
                params[k] = params[k] + velocity[k]
            steps += 1
    return float(np.mean(losses)), steps


# -- checkpoints -------------------------------------------------------------
def checkpoint_name(epoch: int, step: int) -> str:
    return f"model_epoch_{epoch:03d}_step_{step:05d}.pth"


def save_checkpoint(path, params, velocity, *, epoch, step, activation) -> None:
    """np.savez into ``path`` (a pickle-free zip of arrays; the .pth name is TAO's)."""
    arrays = {k: v for k, v in params.items()}
    arrays.update({f"v_{k}": v for k, v in velocity.items()})
    arrays["epoch"] = np.array(epoch)
    arrays["step"] = np.array(step)
    arrays["activation"] = np.array(activation)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        np.savez(f, **arrays)
    os.replace(tmp, path)


def load_checkpoint(path):
    """(params, velocity, epoch, step, activation)."""
    if not os.path.exists(path):
        raise SystemExit(f"checkpoint error: file '{path}' does not exist")
    with np.load(path, allow_pickle=False) as d:
        params = {k: np.array(d[k]) for k in ("w1", "b1", "w2", "b2")}
        velocity = {k: np.array(d[f"v_{k}"]) for k in params}
        return params, velocity, int(d["epoch"]), int(d["step"]), str(d["activation"])


def link_latest(results_dir: str, target_name: str, link_name: str = "model_latest.pth") -> None:
    """Point ``model_latest.pth`` at ``target_name`` (relative symlink, atomic)."""
    link = os.path.join(results_dir, link_name)
    tmp = link + ".tmp"
    if os.path.lexists(tmp):
        os.remove(tmp)
    try:
        os.symlink(target_name, tmp)
    except OSError:  # filesystems without symlinks: copy instead
        import shutil

        shutil.copyfile(os.path.join(results_dir, target_name), tmp)
    os.replace(tmp, link)


# -- reporting ---------------------------------------------------------------
def emit(**values: Any) -> None:
    """Print one tagged metric line (the tao_automl protocol) and flush."""
    sys.stdout.write(f"{METRIC_TAG} {json.dumps(values)}\n")
    sys.stdout.flush()


class StatusFile:
    """Append TAO-style JSON lines to ``<results_dir>/status.json``."""

    def __init__(self, results_dir: str) -> None:
        self.path = os.path.join(results_dir, "status.json")

    def write(self, message: str, status: str = "RUNNING", **data: Any) -> None:
        now = _dt.datetime.now()
        line = dict(data)
        line.update(
            date=f"{now.month}/{now.day}/{now.year}",
            time=f"{now.hour}:{now.minute}:{now.second}",
            status=status,
            verbosity="INFO",
            message=message,
        )
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(line) + "\n")


def fmt_seconds(s: float) -> str:
    return str(_dt.timedelta(seconds=round(s, 3)))


def sleep(seconds: float) -> None:
    if seconds > 0:
        time.sleep(seconds)
