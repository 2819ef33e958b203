"""Early start: the first trials' jobs are submitted by the driver, before Ray Tune runs.

A cold Ray start and Tune's set-up (placement group, trial actor) take 4-5 s
on a quiet 2-core machine; the first configurations are known long before
that (the review shows them: the algorithm's initial batch, which Tune's
searcher is handed as ``points_to_evaluate`` and suggests first).  So the
driver submits one job per initial configuration as soon as the plan is
written (and the baseline measured), and each trial Tune starts *adopts* the
running job whose configuration equals its own instead of submitting one.

The records live in ``<workspace>/early/`` (local workspaces only):

- ``<i>.json``: an early job nobody adopted yet: ``{"key", "name",
  "results_dir", "spec_path", "handle", "t"}`` (``handle`` is null while the
  submit is in flight, so a driver killed then leaves the name to look up;
  a submit that failed leaves ``"error": {"message", "transient"}``: the
  trial that takes it counts it as its first try of ``1 + max_retries``).
- ``<i>.<owner>.taken``: the same record once taken, by a trial (``owner`` is
  its id) or by a sweep (``swept``: the job was canceled).  Taking is an
  atomic rename, so exactly one trial adopts a job, and a sweep never cancels
  a job a trial has adopted.

A trial whose configuration matches no early job submits its own, as
always.  Early jobs nobody adopts (a searcher that suggested something else)
are canceled :data:`SWEEP_GRACE_S` after Tune started the trial they belong to
(early job ``i``: the ``i``-th trial; the searcher suggests them first, in
order), at the end of the search, by ``tao-automl cancel``, and on resume;
each sweep is logged and noted in the run's log, never silent.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

__all__ = ["EARLY_DIR", "config_key", "write_record", "take", "unadopted", "pending", "wait_taken", "BATCH_WAIT_S",
           "SWEEP_GRACE_S", "SUBMIT_WAIT_S", "any_taken", "count", "record"]

#: longest wait of a trial whose adopted job had already ended for the rest of the batch to be taken
BATCH_WAIT_S = 5.0
#: how long after Tune started the trial an untaken early job belongs to that job is canceled
SWEEP_GRACE_S = 30.0
#: longest wait of a trial for the handle of its early job while the driver submits it
SUBMIT_WAIT_S = 10.0

#: the folder (under the workspace) holding the early-job records
EARLY_DIR = "early"
_SWEPT = "swept"


def _canon(value: Any) -> Any:
    if isinstance(value, float):
        return float(f"{value:.12g}") if math.isfinite(value) else repr(value)
    if isinstance(value, Mapping):
        return {str(k): _canon(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_canon(v) for v in value]
    return value


def config_key(values: Mapping[str, Any], fidelity_epochs: int | None) -> str:
    """What makes two trials the same job: their hyperparameter values (as the
    trial enforces them) and their fidelity; floats compared to 12 digits."""
    return json.dumps({"values": _canon(dict(values)), "epochs": fidelity_epochs}, sort_keys=True, default=str)


def write_record(folder: str, index: int, record: Mapping[str, Any]) -> None:
    """Write (or replace) the untaken record ``<index>.json`` atomically."""
    Path(folder).mkdir(parents=True, exist_ok=True)
    path = Path(folder, f"{index}.json")
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(dict(record), indent=1))
    os.replace(tmp, path)


def _untaken(folder: str) -> list[Path]:
    try:
        names = os.listdir(folder)
    except OSError:
        return []
    return sorted((Path(folder, n) for n in names if n.endswith(".json") and n[:-5].isdigit()),
                  key=lambda p: int(p.stem))


def _read(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _take(path: Path, owner: str) -> Path | None:
    """Rename ``path`` to ``<i>.<owner>.taken``; None when another owner was first."""
    dest = path.with_name(f"{path.stem}.{owner}.taken")
    try:
        os.rename(path, dest)
    except FileNotFoundError:
        return None
    return dest


def pending(folder: str | None) -> int:
    """How many early jobs nobody has adopted yet."""
    return len(_untaken(folder)) if folder else 0


def _taken(folder: str | None) -> list[str]:
    """Names of the records taken by a trial (not by a sweep)."""
    try:
        names = os.listdir(folder) if folder else []
    except OSError:
        return []
    return [n for n in names if n.endswith(".taken") and n.count(".") == 2 and n.split(".")[1] != _SWEPT]


def any_taken(folder: str | None) -> bool:
    """Whether a trial has adopted an early job (Tune is up)."""
    return bool(_taken(folder))


def count(folder: str | None) -> int:
    """How many early jobs were recorded, taken or not."""
    try:
        names = os.listdir(folder) if folder else []
    except OSError:
        return 0
    return sum(1 for n in names if (n.endswith(".json") and n[:-5].isdigit()) or n.endswith(".taken"))


def record(folder: str | None, index: int) -> dict[str, Any] | None:
    """Record ``index``, taken or not (None when there is none)."""
    if not folder:
        return None
    path = Path(folder, f"{index}.json")
    if path.exists():
        return _read(path)
    for p in Path(folder).glob(f"{index}.*.taken"):
        return _read(p)
    return None


def wait_taken(folder: str | None, batch: int | None = None, timeout_s: float = BATCH_WAIT_S,
               poll_s: float = 0.05) -> bool:
    """Wait until the first batch is taken: ``batch`` early jobs adopted
    (default: every one), or none left untaken (True); False after ``timeout_s``.

    A trial whose adopted job already ended would return at once, before
    Tune has started the other first-batch trials' actors; Tune then hands
    its actor to one of them and drops that trial's own actor request, so
    the next trial waits seconds for a fresh actor (measured: one slot idle
    ~2 s per such trial with 2 s jobs).  Waiting here until the batch is
    taken keeps one actor per slot.  Jobs queued beyond the batch
    (:mod:`tao_automl.execution.early_feed`) are taken by later trials, so
    they are not waited for."""
    deadline = time.monotonic() + timeout_s
    while pending(folder) and (batch is None or len(_taken(folder)) < batch):
        if time.monotonic() >= deadline:
            return False
        time.sleep(poll_s)
    return True


def take(folder: str | None, key: str, owner: str) -> dict[str, Any] | None:
    """Adopt the untaken early job whose ``key`` equals ``key``: its record
    (with a ``handle``, or an ``error`` when the driver's submit failed: the
    trial's first try), or None when there is none (or another trial was
    first)."""
    if not folder:
        return None
    deadline = time.monotonic() + SUBMIT_WAIT_S
    while True:
        in_flight = False
        for path in _untaken(folder):
            rec = _read(path)
            if not rec or rec.get("key") != key:
                continue
            if not (rec.get("handle") or rec.get("error")):
                in_flight = True  # the driver is submitting it right now: wait for its handle
                continue
            if _take(path, owner) is not None:
                return rec
        if not in_flight or time.monotonic() >= deadline:
            return None
        time.sleep(0.02)


def unadopted(folder: str | None, *, adopted_job_ids: Iterable[str] | None = None,
              below: int | None = None) -> list[tuple[str, dict[str, Any]]]:
    """Take every early job nobody adopted (``below``: numbered lower than
    that) as ``swept`` and return them, ``("early-<i>", record)`` each, for
    the caller to cancel (:func:`tao_automl.execution.jobs.sweep_early_jobs`).

    With ``adopted_job_ids`` (resume, ``tao-automl cancel``: the job ids the
    ledger knows), a job a trial took but never recorded -- a driver killed in
    between -- is returned too.  Each job is returned once.
    """
    if not folder or not os.path.isdir(folder):
        return []
    out: list[tuple[str, dict[str, Any]]] = []
    for path in _untaken(folder):
        if below is not None and int(path.stem) >= below:
            continue
        rec = _read(path)
        if _take(path, _SWEPT) is not None:
            out.append((f"early-{path.stem}", rec or {}))
    if adopted_job_ids is not None:
        known = set(adopted_job_ids)
        for name in sorted(os.listdir(folder)):
            parts = name.split(".")
            if len(parts) != 3 or parts[2] != "taken" or parts[1] == _SWEPT:
                continue
            path = Path(folder, name)
            rec = _read(path) or {}
            job_id = (rec.get("handle") or {}).get("job_id")
            if job_id is not None and job_id not in known:
                try:  # swept once: the next sweep leaves it
                    os.rename(path, path.with_name(f"{parts[0]}.{_SWEPT}.taken"))
                except FileNotFoundError:
                    continue
                out.append((f"early-{parts[0]}", rec))
    return out
