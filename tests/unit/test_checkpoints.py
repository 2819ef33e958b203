"""Checkpoint resolvers: names, the latest trap, folders, best/last/exact."""

from __future__ import annotations

import os

import pytest

from tao_automl.errors import CheckpointError
from tao_automl.execution.checkpoints import (
    CheckpointRef,
    PlatformCheckpointProvider,
    list_checkpoints,
    parse_checkpoint_name,
    select_checkpoint,
)
from tao_automl.execution.metrics import EpochRecord
from tao_automl.platforms.base import JobHandle

TAO_RUN = [
    "status.json",
    "train/lightning_logs/version_0/events.out.tfevents.1.host",
    "train/model_epoch_000_step_00125.pth",
    "train/model_epoch_001_step_00250.pth",
    "train/model_epoch_002_step_00375.pth",
    "train/dino_model_latest.pth",
    "train/experiment.yaml",
]


@pytest.mark.parametrize(
    "path, epoch, step, latest, folder, ref_path",
    [
        ("model_epoch_003_step_00420.pth", 3, 420, False, False, None),
        ("epoch_5.pth", 5, None, False, False, None),
        ("epoch=3-step=420.ckpt", 3, 420, False, False, None),
        ("checkpoint-epoch-3.pt", 3, None, False, False, None),
        ("train/ar_model_epoch_000_step_00005.pth", 0, 5, False, False, None),
        ("model_latest.pth", None, None, True, False, None),
        ("train/reid_model_latest.pth", None, None, True, False, None),
        ("last.ckpt", None, None, True, False, None),
        ("model.pth", None, None, False, False, None),
        ("safetensors/epoch_7/", 7, None, False, True, "safetensors/epoch_7"),
        (
            "safetensors/epoch_7/model-00001-of-00002.safetensors",
            7,
            None,
            False,
            True,
            "safetensors/epoch_7",
        ),
        ("checkpoints/step_420/policy/model.pt", None, 420, False, True, "checkpoints/step_420"),
        ("out/checkpoint-420/pytorch_model.bin", None, 420, False, True, "out/checkpoint-420"),
        ("out/latest/model.safetensors", None, None, True, True, "out/latest"),
    ],
)
def test_parse_checkpoint_name(path, epoch, step, latest, folder, ref_path):
    ref = parse_checkpoint_name(path)
    assert ref == CheckpointRef(ref_path or path, epoch, step, latest, folder)


@pytest.mark.parametrize(
    "path",
    [
        "status.json",
        "train/experiment.yaml",
        "checkpoints/step_420/config.json",
        "epoch_3/preds.json",
        "model.onnx",
        "events.out.tfevents.1",
    ],
)
def test_non_checkpoints(path):
    assert parse_checkpoint_name(path) is None


def test_folder_checkpoints_deduplicated():
    arts = [
        "safetensors/epoch_1/model.safetensors",
        "safetensors/epoch_1/config.json",
        "safetensors/epoch_2/model-00001-of-00002.safetensors",
        "safetensors/epoch_2/model-00002-of-00002.safetensors",
    ]
    assert [r.path for r in list_checkpoints(arts)] == [
        "safetensors/epoch_1",
        "safetensors/epoch_2",
    ]
    assert select_checkpoint(arts) == "safetensors/epoch_2"
    assert select_checkpoint(arts, epoch=1) == "safetensors/epoch_1"


# -- the latest trap ----------------------------------------------------------
def test_last_never_picks_the_latest_link():
    assert select_checkpoint(TAO_RUN) == "train/model_epoch_002_step_00375.pth"
    assert select_checkpoint(TAO_RUN, which="last") == "train/model_epoch_002_step_00375.pth"


def test_latest_only_when_asked():
    assert select_checkpoint(TAO_RUN, which="latest") == "train/dino_model_latest.pth"


def test_only_a_latest_link_is_not_enough_for_last():
    with pytest.raises(CheckpointError, match="last") as exc:
        select_checkpoint(["model_latest.pth", "status.json"])
    assert "available" in str(exc.value)


def test_symlink_predicate_marks_links():
    arts = ["model_epoch_001_step_00010.pth", "final.pth"]
    assert (
        select_checkpoint(arts, which="latest", is_link=lambda p: p == "final.pth") == "final.pth"
    )
    assert (
        select_checkpoint(arts, is_link=lambda p: p == "final.pth")
        == "model_epoch_001_step_00010.pth"
    )


def test_no_latest_link_raises_listing_available():
    with pytest.raises(CheckpointError) as exc:
        select_checkpoint(TAO_RUN[:4], which="latest")
    msg = str(exc.value)
    assert "model_epoch_000_step_00125.pth (epoch=0, step=125)" in msg


# -- exact / last / best ------------------------------------------------------
def test_exact_epoch_step_and_offset():
    assert select_checkpoint(TAO_RUN, epoch=1) == "train/model_epoch_001_step_00250.pth"
    assert select_checkpoint(TAO_RUN, step=375) == "train/model_epoch_002_step_00375.pth"
    assert select_checkpoint(TAO_RUN, which="epoch", epoch=0, step=125).endswith("00125.pth")
    # status.json counts epochs from 1 while TAO names checkpoints from 0
    assert select_checkpoint(TAO_RUN, epoch=3, epoch_offset=-1).endswith("epoch_002_step_00375.pth")


def test_exact_epoch_missing_lists_available():
    with pytest.raises(CheckpointError) as exc:
        select_checkpoint(TAO_RUN, epoch=9)
    msg = str(exc.value)
    assert "'epoch': 9" in msg
    for p in TAO_RUN[2:5]:
        assert p in msg
    assert "dino_model_latest" in msg  # listed, as a latest link


def test_last_orders_by_epoch_then_step():
    arts = [
        "epoch=2-step=100.ckpt",
        "epoch=2-step=150.ckpt",
        "epoch=10-step=50.ckpt",
        "epoch=9-step=999.ckpt",
    ]
    assert select_checkpoint(arts) == "epoch=10-step=50.ckpt"
    assert select_checkpoint(arts, epoch=2) == "epoch=2-step=150.ckpt"
    steps = ["checkpoint-500/model.safetensors", "checkpoint-1000/model.safetensors"]
    assert select_checkpoint(steps) == "checkpoint-1000"


def test_single_unnumbered_checkpoint_is_last_but_two_are_ambiguous():
    assert select_checkpoint(["model.pth", "model_latest.pth"]) == "model.pth"
    with pytest.raises(CheckpointError, match="cannot tell"):
        select_checkpoint(["a.pth", "b.pth"])


PER_EPOCH = [
    EpochRecord(1, {"val_loss": 0.9, "acc": 0.5}),
    EpochRecord(2, {"val_loss": 0.4, "acc": 0.7}),
    EpochRecord(3, {"val_loss": 0.6, "acc": 0.8}),
    EpochRecord(None, {"val_loss": 0.1}),
]
EPOCH_FILES = [f"model_epoch_{e:03d}_step_{e * 10:05d}.pth" for e in (1, 2, 3)] + [
    "model_latest.pth"
]


def test_best_by_metric_and_direction():
    kw = {"which": "best", "per_epoch": PER_EPOCH}
    assert (
        select_checkpoint(EPOCH_FILES, metric="val_loss", direction="minimize", **kw)
        == EPOCH_FILES[1]
    )
    assert (
        select_checkpoint(EPOCH_FILES, metric="acc", direction="maximize", **kw) == EPOCH_FILES[2]
    )
    assert (
        select_checkpoint(EPOCH_FILES, metric="Validation loss", direction="min", **kw)
        == EPOCH_FILES[1]
    )


def test_best_skips_epochs_without_checkpoint():
    arts = [EPOCH_FILES[0], EPOCH_FILES[2]]  # checkpoint_interval 2: no epoch 2
    got = select_checkpoint(
        arts, which="best", per_epoch=PER_EPOCH, metric="val_loss", direction="minimize"
    )
    assert got == EPOCH_FILES[2]


def test_best_errors():
    with pytest.raises(CheckpointError, match="needs per_epoch"):
        select_checkpoint(EPOCH_FILES, which="best", metric="val_loss")
    with pytest.raises(CheckpointError, match="no checkpointed epoch"):
        select_checkpoint(
            EPOCH_FILES, which="best", per_epoch=PER_EPOCH, metric="mAP", direction="maximize"
        )


def test_unknown_which():
    with pytest.raises(CheckpointError, match="unknown checkpoint selection"):
        select_checkpoint(EPOCH_FILES, which="newest")


# -- provider -----------------------------------------------------------------
class FakeBackend:
    name = "fake"

    def __init__(self, artifacts):
        self.artifacts = artifacts
        self.calls = 0

    def list_artifacts(self, handle):
        self.calls += 1
        return list(self.artifacts)


def _local_run(tmp_path):
    root = tmp_path / "results"
    root.mkdir()
    for name in EPOCH_FILES[:3]:
        (root / name).write_bytes(b"x")
    os.symlink(EPOCH_FILES[2], root / "final.pth")  # a latest link without "latest" in its name
    arts = sorted(p.name for p in root.iterdir())
    return root, JobHandle(backend="fake", job_id="1", results_dir=str(root)), FakeBackend(arts)


def test_provider_resolves_absolute_paths_and_ignores_symlinks(tmp_path):
    root, handle, backend = _local_run(tmp_path)
    prov = PlatformCheckpointProvider(backend, handle)
    assert prov.resolve("parent_model") == str(root / EPOCH_FILES[2])
    assert prov.resolve("resume_model") == str(root / EPOCH_FILES[2])
    assert prov.resolve("parent_model_folder") == str(root)
    assert PlatformCheckpointProvider(backend, handle, which="latest").resolve(
        "parent_model"
    ) == str(root / "final.pth")
    assert prov.resolve("ptm") is None


def test_provider_best_and_exact_epoch(tmp_path):
    root, handle, backend = _local_run(tmp_path)
    best = PlatformCheckpointProvider(
        backend, handle, per_epoch=PER_EPOCH, metric="val_loss", direction="minimize", which="best"
    )
    assert best.resolve("parent_model") == str(root / EPOCH_FILES[1])
    assert best.resolve("resume_model") == str(
        root / EPOCH_FILES[2]
    )  # resume continues from the last
    exact = PlatformCheckpointProvider(backend, handle, which="epoch", epoch=1)
    assert exact.resolve("resume_model") == str(root / EPOCH_FILES[0])


def test_provider_without_checkpoints():
    backend = FakeBackend(["status.json"])
    prov = PlatformCheckpointProvider(
        backend, JobHandle(backend="fake", job_id="1", results_dir="/r")
    )
    assert prov.resolve("resume_model") is None
    with pytest.raises(CheckpointError, match="no checkpoints at all"):
        prov.resolve("parent_model")


def test_provider_uri_results_dir_and_folder_checkpoint():
    backend = FakeBackend(
        ["safetensors/epoch_3/model.safetensors", "safetensors/epoch_3/config.json"]
    )
    handle = JobHandle(backend="fake", job_id="j", results_dir="s3://bucket/exp/t1/")
    prov = PlatformCheckpointProvider(backend, handle)
    assert prov.resolve("parent_model") == "s3://bucket/exp/t1/safetensors/epoch_3"
    assert prov.resolve("parent_model_folder") == "s3://bucket/exp/t1/safetensors/epoch_3"


def test_epoch_numbering_is_inferred_from_the_first_checkpoint() -> None:
    from tao_automl.execution.checkpoints import (
        infer_epoch_offset,
        list_checkpoints,
        select_checkpoint,
    )

    zero = ["model_epoch_000_step_00010.pth", "model_epoch_001_step_00020.pth", "model_latest.pth"]
    one = ["model_epoch_001_step_00010.pth", "model_epoch_002_step_00020.pth"]
    assert infer_epoch_offset(list_checkpoints(zero)) == -1
    assert infer_epoch_offset(list_checkpoints(one)) == 0
    assert infer_epoch_offset([]) == 0
    # a resumed attempt (after epoch 2) holds only its new checkpoints
    assert infer_epoch_offset(list_checkpoints(["model_epoch_002_step_00030.pth"]), start_epoch=2) == -1
    assert infer_epoch_offset(list_checkpoints(["model_epoch_003_step_00030.pth"]), start_epoch=2) == 0
    # reported epoch 1 -> the first checkpoint under either numbering
    assert select_checkpoint(zero, epoch=1, epoch_offset=None) == "model_epoch_000_step_00010.pth"
    assert select_checkpoint(one, epoch=1, epoch_offset=None) == "model_epoch_001_step_00010.pth"
    # an explicit offset wins over inference
    assert select_checkpoint(zero, epoch=1, epoch_offset=0) == "model_epoch_001_step_00020.pth"


@pytest.mark.parametrize(("value", "expected"), [(0, 0), (-1, -1), ("auto", None), (None, None)])
def test_checkpoint_epoch_offset_from_the_sidecar(tmp_path, value, expected) -> None:
    from types import SimpleNamespace

    from tao_automl.planning.preparation import checkpoint_epoch_offset

    skill = SimpleNamespace(root=str(tmp_path), info=SimpleNamespace(extra={}))
    assert checkpoint_epoch_offset(skill, {"checkpoint_epoch_offset": value}) == expected
    assert checkpoint_epoch_offset(skill, {}) is None
    skill.info.extra = {"checkpoint_epoch_offset": -1}  # skill_info.yaml wins over the sidecar
    assert checkpoint_epoch_offset(skill, {"checkpoint_epoch_offset": 0}) == -1


@pytest.mark.parametrize("bad", [1, 5, "zero", True])
def test_bad_checkpoint_epoch_offset_names_file_key_and_value(tmp_path, bad) -> None:
    from types import SimpleNamespace

    from tao_automl.errors import SkillError
    from tao_automl.planning.preparation import checkpoint_epoch_offset

    skill = SimpleNamespace(root=str(tmp_path), info=SimpleNamespace(extra={}))
    with pytest.raises(SkillError) as exc:
        checkpoint_epoch_offset(skill, {"checkpoint_epoch_offset": bad})
    msg = str(exc.value)
    assert "automl.yaml" in msg and "checkpoint_epoch_offset" in msg and repr(bad) in msg
