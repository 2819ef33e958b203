"""Checkpoint resolvers: list a job's artifacts and choose one checkpoint.

Recognized names (case-insensitive)::

    model_epoch_003_step_00420.pth   epoch 3, step 420   (TAO PyTorch)
    epoch_5.pth                      epoch 5
    epoch=3-step=420.ckpt            epoch 3, step 420   (PyTorch Lightning)
    checkpoint-epoch-3.pt            epoch 3
    safetensors/epoch_7/...          folder checkpoint, epoch 7
    checkpoints/step_420/...         folder checkpoint, step 420
    checkpoint-420/...               folder checkpoint, step 420 (Hugging Face)
    model_latest.pth, last.ckpt      the "latest" link: never chosen unless which="latest"

Selection (:func:`select_checkpoint`): ``epoch``/``step`` (exact), ``best``
(the epoch with the best metric among epochs that have a checkpoint), ``last``
(highest epoch, then step) and ``latest`` (the latest link).  Folder
checkpoints resolve to the folder path.  Failures raise
:class:`~tao_automl.errors.CheckpointError` listing what was available.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import attrs

from tao_automl.config.direction import is_better
from tao_automl.errors import AutoMLError, CheckpointError
from tao_automl.execution.metrics import EpochRecord
from tao_automl.reporting.collect import score_of
from tao_automl.reporting.results import TrialResult
from tao_automl.store.ledger import TrialRecord

__all__ = [
    "CHECKPOINT_EXTENSIONS",
    "CheckpointRef",
    "parse_checkpoint_name",
    "list_checkpoints",
    "select_checkpoint",
    "infer_epoch_offset",
    "PlatformCheckpointProvider",
    "best_checkpoint",
]

_LOG = logging.getLogger("tao_automl.execution.checkpoints")

#: File extensions that hold model weights.
CHECKPOINT_EXTENSIONS = (
    ".pth",
    ".pt",
    ".ckpt",
    ".tlt",
    ".hdf5",
    ".h5",
    ".safetensors",
    ".bin",
    ".keras",
)
_EPOCH = re.compile(r"(?:^|[^a-z])epoch[_=\-]?(\d+)", re.IGNORECASE)
_STEP = re.compile(r"(?:^|[^a-z])(?:global_step|step|iter)[_=\-]?(\d+)", re.IGNORECASE)
_HF_FOLDER = re.compile(r"^checkpoint-(\d+)$", re.IGNORECASE)
_LATEST = re.compile(r"(?:^|[^a-z])latest(?:[^a-z]|$)", re.IGNORECASE)
_LAST = re.compile(r"(?:.*[_\-.])?last", re.IGNORECASE)  # last.ckpt, model_last.pth


def _is_latest_name(stem: str, numbered: bool) -> bool:
    return bool(_LATEST.search(stem)) or (not numbered and bool(_LAST.fullmatch(stem)))


_WHICH = ("last", "best", "latest", "epoch", "step")


@attrs.frozen
class CheckpointRef:
    """One checkpoint found among a job's artifacts.

    Attributes:
        path: artifact path (relative to the results dir); a folder path for
            folder checkpoints.
        epoch / step: numbers parsed from the name (``None`` when absent).
        is_latest: a ``*_latest*`` / ``last.*`` link or a symlink.
        is_folder: the checkpoint is a directory.
    """

    path: str
    epoch: int | None = None
    step: int | None = None
    is_latest: bool = False
    is_folder: bool = False

    @property
    def order(self) -> tuple[int, int]:
        return (
            self.epoch if self.epoch is not None else -1,
            self.step if self.step is not None else -1,
        )

    def describe(self) -> str:
        bits = [
            f"epoch={self.epoch}" if self.epoch is not None else "",
            f"step={self.step}" if self.step is not None else "",
        ]
        bits += ["latest-link" if self.is_latest else "", "folder" if self.is_folder else ""]
        return f"{self.path} ({', '.join(b for b in bits if b) or 'unnumbered'})"


def _numbers(name: str) -> tuple[int | None, int | None]:
    e = _EPOCH.findall(name)
    s = _STEP.findall(name)
    return (int(e[-1]) if e else None, int(s[-1]) if s else None)


def _folder_numbers(part: str) -> tuple[int | None, int | None] | None:
    hf = _HF_FOLDER.match(part)
    if hf:
        return None, int(hf.group(1))
    epoch, step = _numbers(part)
    if epoch is None and step is None:
        return None
    return epoch, step


def parse_checkpoint_name(path: str, *, is_link: bool = False) -> CheckpointRef | None:
    """Parse one artifact path; ``None`` when it is not a checkpoint.

    A file is a checkpoint when its extension is in :data:`CHECKPOINT_EXTENSIONS`.
    A weights file inside a numbered directory (``safetensors/epoch_7/model.safetensors``),
    or a directory path ending with ``/``, yields a folder checkpoint for that
    directory; other files in numbered directories (``epoch_3/preds.json``) are
    not checkpoints.
    """
    p = str(path).replace("\\", "/")
    trailing = p.endswith("/")
    parts = [x for x in p.split("/") if x]
    if not parts:
        return None
    base = parts[-1]
    is_file_ckpt = not trailing and base.lower().endswith(CHECKPOINT_EXTENSIONS)
    if is_file_ckpt:
        stem = base.rsplit(".", 1)[0]
        epoch, step = _numbers(stem)
        latest = is_link or _is_latest_name(stem, epoch is not None or step is not None)
        if epoch is not None or step is not None or latest:
            return CheckpointRef("/".join(parts), epoch, step, latest, False)
    if not (trailing or is_file_ckpt):
        return None
    # folder checkpoints: the deepest numbered directory (or the path itself with "/")
    dirs = parts if trailing else parts[:-1]
    for i in range(len(dirs) - 1, -1, -1):
        nums = _folder_numbers(dirs[i])
        latest_dir = _is_latest_name(dirs[i], nums is not None)
        if nums is not None or latest_dir:
            epoch, step = nums or (None, None)
            return CheckpointRef("/".join(dirs[: i + 1]), epoch, step, latest_dir or is_link, True)
    if is_file_ckpt:
        return CheckpointRef("/".join(parts), None, None, is_link, False)
    return None


def list_checkpoints(
    artifacts: Iterable[str], *, is_link: Callable[[str], bool] | None = None
) -> list[CheckpointRef]:
    """All distinct checkpoints among ``artifacts`` (folders de-duplicated)."""
    seen: dict[str, CheckpointRef] = {}
    for path in artifacts:
        link = bool(is_link and is_link(path))
        ref = parse_checkpoint_name(path, is_link=link)
        if ref is not None and ref.path not in seen:
            seen[ref.path] = ref
    return sorted(seen.values(), key=lambda r: (r.order, r.path))


def _fail(problem: str, refs: Sequence[CheckpointRef], **kw: Any) -> CheckpointError:
    listing = "; ".join(r.describe() for r in refs) or "no checkpoints at all"
    return CheckpointError(problem, expected=kw.pop("expected", None), hint=f"available: {listing}", **kw)


def _last(refs: Sequence[CheckpointRef]) -> CheckpointRef | None:
    numbered = [r for r in refs if r.epoch is not None or r.step is not None]
    if numbered:
        return max(numbered, key=lambda r: (r.order, r.path))
    return refs[0] if len(refs) == 1 else None


def _best(refs, per_epoch, metric, direction, epoch_offset, listed):
    if not per_epoch or not metric or not direction:
        raise _fail(
            "which='best' needs per_epoch records, metric and direction",
            listed,
            key="which",
            value="best",
        )
    by_epoch: dict[int, list[CheckpointRef]] = {}
    for r in refs:
        if r.epoch is not None:
            by_epoch.setdefault(r.epoch, []).append(r)
    best_ref, best_val, best_ep = None, None, None
    for rec in per_epoch:
        value = rec.get(metric) if hasattr(rec, "get") else None
        if rec.epoch is None or value is None:
            continue
        candidates = by_epoch.get(rec.epoch + epoch_offset)
        if candidates and is_better(value, best_val, direction):
            best_ref, best_val, best_ep = max(candidates, key=lambda r: r.order), value, rec.epoch
    if best_ref is None:
        epochs = sorted(rec.epoch for rec in per_epoch if rec.epoch is not None)
        raise _fail(
            f"no checkpointed epoch has a value for metric {metric!r}",
            listed,
            key="per_epoch epochs",
            value=epochs,
        )
    _LOG.debug(
        "best checkpoint by %s (%s): epoch %s value %s -> %s",
        metric,
        direction,
        best_ep,
        best_val,
        best_ref.path,
    )
    return best_ref


def infer_epoch_offset(refs: Sequence[CheckpointRef], start_epoch: int = 0) -> int:
    """How checkpoint numbers relate to the epochs a job reports: ``-1`` when
    they count from 0 (TAO PyTorch writes ``model_epoch_000_...`` after the
    epoch ``status.json`` calls 1), else ``0``.

    The evidence is a checkpoint numbered ``start_epoch`` (the epoch the
    attempt resumed after; 0 for a fresh start) among the attempt's own
    results: with 1-based numbering the first new checkpoint is
    ``start_epoch + 1``.  Without that evidence (no checkpoint yet) the
    answer is 0.
    """
    return -1 if any(r.epoch == start_epoch for r in refs if not r.is_latest) else 0


def select_checkpoint(
    artifacts: Iterable[str],
    *,
    which: str | None = None,
    epoch: int | None = None,
    step: int | None = None,
    per_epoch: Sequence[Any] | None = None,
    metric: str | None = None,
    direction: str | None = None,
    epoch_offset: int | None = 0,
    start_epoch: int = 0,
    is_link: Callable[[str], bool] | None = None,
) -> str:
    """Choose one checkpoint path among ``artifacts`` (result-dir-relative paths).

    Args:
        which: ``last`` (default; highest epoch, then step), ``best``, ``latest``,
            ``epoch`` or ``step``; inferred as ``epoch``/``step`` when only those are given.
        epoch / step: exact numbers for ``which="epoch"``/``"step"`` (both may be given).
        per_epoch: :class:`~tao_automl.execution.metrics.EpochRecord` list for ``best``.
        metric / direction: the metric to rank epochs by, and ``minimize``/``maximize``.
        epoch_offset: checkpoint epoch = metric epoch + offset (TAO PyTorch names
            checkpoints 0-based while ``status.json`` counts from 1: use ``-1``);
            ``None`` infers it from the checkpoints (:func:`infer_epoch_offset`,
            with ``start_epoch`` the epoch the job resumed after).
        is_link: optional predicate marking symlinks (treated like ``*_latest``).

    Returns the checkpoint's path (a folder path for folder checkpoints).
    """
    refs = list_checkpoints(artifacts, is_link=is_link)
    if epoch_offset is None:
        epoch_offset = infer_epoch_offset(refs, start_epoch)
    if which is None:
        which = "epoch" if epoch is not None else "step" if step is not None else "last"
    if which not in _WHICH:
        raise _fail(
            "unknown checkpoint selection",
            refs,
            key="which",
            value=which,
            expected=" | ".join(_WHICH),
        )
    if which == "latest":
        latest = [r for r in refs if r.is_latest]
        if not latest:
            raise _fail(
                "no latest checkpoint link among the artifacts", refs, key="which", value=which
            )
        return min(latest, key=lambda r: (r.path.count("/"), r.path)).path
    regular = [r for r in refs if not r.is_latest]
    if which in ("epoch", "step"):
        if epoch is None and step is None:
            raise _fail(f"which={which!r} needs epoch= or step=", refs, key="which", value=which)
        match = [
            r
            for r in regular
            if (epoch is None or r.epoch == epoch + epoch_offset)
            and (step is None or r.step == step)
        ]
        if not match:
            raise _fail(
                "no checkpoint for the requested epoch/step",
                refs,
                key="epoch/step",
                value={"epoch": epoch, "step": step},
            )
        return max(match, key=lambda r: (r.order, r.path)).path
    if which == "best":
        return _best(regular, per_epoch, metric, direction, epoch_offset, refs).path
    chosen = _last(regular)
    if chosen is None:
        raise _fail(
            "cannot tell which checkpoint is the last one",
            refs,
            key="which",
            value=which,
            expected="checkpoint names carrying an epoch or step number",
        )
    return chosen.path


def _join(results_dir: str | None, rel: str) -> str:
    if not results_dir:
        return rel
    if "://" in results_dir:
        return results_dir.rstrip("/") + "/" + rel.lstrip("/")
    return os.path.abspath(os.path.join(results_dir, rel))


class PlatformCheckpointProvider:
    """Resolve checkpoints of one finished job through its platform backend.

    Implements the spec builder's ``CheckpointProvider`` protocol:
    ``resolve(kind) -> str | None`` for ``parent_model`` (the selected
    checkpoint), ``parent_model_folder`` (the folder checkpoint, or the folder
    holding the selected file) and ``resume_model`` (``which`` when it is
    ``epoch``/``step``/``latest``, else the last checkpoint; ``None`` when the job
    wrote no checkpoint).  Other kinds (``ptm``) give ``None``.  Paths are
    absolute (results dir joined) or URIs.
    """

    KINDS = ("parent_model", "parent_model_folder", "resume_model")

    def __init__(
        self,
        backend: Any,
        handle: Any,
        *,
        per_epoch: Sequence[Any] | None = None,
        metric: str | None = None,
        direction: str | None = None,
        which: str = "last",
        epoch: int | None = None,
        step: int | None = None,
        epoch_offset: int | None = 0,
        start_epoch: int = 0,
    ) -> None:
        self.backend = backend
        self.start_epoch = start_epoch
        self.handle = handle
        self.per_epoch = per_epoch
        self.metric = metric
        self.direction = direction
        self.which = which
        self.epoch = epoch
        self.step = step
        self.epoch_offset = epoch_offset

    def _artifacts(self) -> list[str]:
        return list(self.backend.list_artifacts(self.handle))

    def _is_link(self) -> Callable[[str], bool] | None:
        root = getattr(self.handle, "results_dir", None)
        if not root or "://" in root:
            return None
        return lambda rel: os.path.islink(os.path.join(root, rel))

    def select(self, which: str | None = None) -> str:
        """Relative path of the checkpoint chosen with ``which`` (default: the provider's)."""
        return select_checkpoint(
            self._artifacts(),
            which=which or self.which,
            epoch=self.epoch,
            step=self.step,
            per_epoch=self.per_epoch,
            metric=self.metric,
            direction=self.direction,
            epoch_offset=self.epoch_offset,
            start_epoch=self.start_epoch,
            is_link=self._is_link(),
        )

    def resolve(self, kind: str) -> str | None:
        """Absolute path/URI for ``kind`` (see class docstring)."""
        root = getattr(self.handle, "results_dir", None)
        if kind == "resume_model":
            arts = self._artifacts()
            if not list_checkpoints(arts):
                return None
            which = self.which if self.which in ("epoch", "step", "latest") else "last"
            return _join(root, self.select(which))
        if kind == "parent_model":
            return _join(root, self.select())
        if kind == "parent_model_folder":
            arts = self._artifacts()
            rel = self.select()
            ref = {r.path: r for r in list_checkpoints(arts)}.get(rel)
            if ref is not None and ref.is_folder:
                return _join(root, rel)
            return _join(root, rel.rsplit("/", 1)[0] if "/" in rel else ".")
        # "ptm" and other kinds are not a job's own checkpoints: nothing to give.
        _LOG.debug("checkpoint kind %r is not resolved from job artifacts", kind)
        return None


def best_checkpoint(backend: Any, rec: TrialRecord, trial: TrialResult, metric: str, direction: str,
                    which: str, epoch_offset: int | None = None) -> str | None:
    """The checkpoint of the epoch that earned the trial's score (:func:`~tao_automl.reporting.collect.score_of`
    with ``which`` = ``checkpoint_selection``), from the attempt that trained it.
    An epoch the job wrote no checkpoint for (it checkpoints every N epochs)
    falls back to the ``which`` checkpointed epoch (logged); a score without an
    epoch to the attempt's last checkpoint.  ``epoch_offset`` None infers the checkpoint numbering from the
    job's files."""
    if not rec.attempts:
        return None
    score = score_of(rec, metric, direction, which)
    att = next((a for a in rec.attempts if a.number == score.attempt), rec.attempts[-1])
    if score.epoch is not None:
        try:
            return PlatformCheckpointProvider(
                backend, att.handle, which="epoch", epoch=score.epoch, epoch_offset=epoch_offset,
                start_epoch=att.start_epoch,
            ).resolve("parent_model")
        except AutoMLError as exc:
            _LOG.warning("trial %s: no checkpoint for epoch %s (its %s %s); choosing the %s checkpointed "
                        "epoch instead: %s", trial.rec_id, score.epoch, metric, score.value, which, exc)
        records = [EpochRecord(epoch=e.get("epoch"), values={k: v for k, v in e.items()
                                                             if k not in ("epoch", "attempt")})
                   for e in trial.metrics_per_epoch if e.get("attempt") == att.number]
        try:
            return PlatformCheckpointProvider(
                backend, att.handle, per_epoch=records, metric=metric, direction=direction, which=which,
                epoch_offset=epoch_offset, start_epoch=att.start_epoch,
            ).resolve("parent_model")
        except AutoMLError:
            pass
    try:
        return PlatformCheckpointProvider(backend, att.handle, which="last").resolve("parent_model")
    except AutoMLError:
        return None
