"""Data sources: every entry kind, plain dicts and the real skill_info files."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tao_automl.errors import SpecError
from tao_automl.spec.data_sources import as_source, join_uri, resolve_data_sources

# The packaged skills are byte-identical copies of the skill bank's (test_packaged_skills.py).
PACKAGED = Path(__file__).resolve().parents[2] / "skills"
ROOTS = [PACKAGED]


def _info(root: Path, name: str) -> dict:
    return yaml.safe_load((root / name / "references" / "skill_info.yaml").read_text())


def test_join_uri():
    assert join_uri("s3://b/train/", "images.tar.gz") == "s3://b/train/images.tar.gz"
    assert join_uri("/data", "a/b.json") == "/data/a/b.json"
    assert join_uri("/data", "s3://other/x.json") == "s3://other/x.json"
    assert join_uri("/data", "/abs/x.json") == "/abs/x.json"


def test_plain_path_and_extracted_folder_archive():
    res = resolve_data_sources(
        {"dataset.img": {"source": "train_datasets", "path": "images.tar.gz",
                         "runtime": "extracted_folder"},
         "dataset.ann": {"source": "train_datasets", "path": "annotations.json"}},
        {"train_datasets": "s3://b/train"})
    assert res.values == {"dataset.img": "s3://b/train/images.tar.gz",
                          "dataset.ann": "s3://b/train/annotations.json"}
    assert res.archives == {"dataset.img": "s3://b/train/images.tar.gz"}
    assert any("extracted_folder" in n and "dataset.img" in n for n in res.notes)
    assert res.missing == []


def test_missing_source_reported_unless_optional():
    res = resolve_data_sources(
        {"a": {"source": "eval_dataset", "path": "x.json"},
         "b": {"source": "eval_dataset", "path": "y.json", "optional": True}}, {})
    assert res.missing == ["a"] and res.values == {}
    assert any("optional" in n and "'b'" in n for n in res.notes)


def test_user_keys_win():
    res = resolve_data_sources({"dataset.ann": {"source": "train_datasets", "path": "a.json"}},
                               {}, user_keys=["dataset.ann"])
    assert res.values == {} and res.missing == []
    assert any("user-given" in n for n in res.notes)


def test_placeholders_filled_or_missing():
    src = {"custom.ann": {"source": "train_datasets", "path": "{train_dataset_annotation}"}}
    res = resolve_data_sources(src, {"train_datasets": "/d"})
    assert res.missing == ["custom.ann"]
    assert any("train_dataset_annotation" in n for n in res.notes)
    res = resolve_data_sources(src, {"train_datasets": "/d"},
                               placeholders={"train_dataset_annotation": "ann/train.json"})
    assert res.values == {"custom.ann": "/d/ann/train.json"}
    # placeholder values may also ride in dataset_uris, and may be absolute
    res = resolve_data_sources(src, {"train_datasets": "/d",
                                     "train_dataset_annotation": "s3://x/a.json"})
    assert res.values == {"custom.ann": "s3://x/a.json"}


def test_path_from_format_pick_and_fallback():
    src = {"m": {"source": "train_datasets",
                 "path_from_format": {"llava": ["images.tar.gz", "videos.tar.gz"],
                                      "*": "media.tar.gz"}}}
    res = resolve_data_sources(src, {"train_datasets": "/d"}, data_format="llava")
    assert res.values == {"m": "/d/images.tar.gz"}
    assert any("videos.tar.gz" in n for n in res.notes)  # other candidates are named
    res = resolve_data_sources(src, {"train_datasets": "/d"}, data_format="coco")
    assert res.values == {"m": "/d/media.tar.gz"}
    res = resolve_data_sources({"m": {"source": "train_datasets",
                                      "path_from_format": {"llava": "a"}}},
                               {"train_datasets": "/d"}, data_format="coco")
    assert res.missing == ["m"]


def test_list_one_entry_per_uri_and_all_candidates():
    src = {"ds": {"source": "train_datasets", "path": "ann.json", "list": True}}
    res = resolve_data_sources(src, {"train_datasets": ["/a", "/b"]})
    assert res.values == {"ds": ["/a/ann.json", "/b/ann.json"]}
    res = resolve_data_sources(src, {"train_datasets": "/a"})
    assert res.values == {"ds": ["/a/ann.json"]}
    cands = {"ds": {"source": "train_datasets", "list": True,
                    "path_from_format": {"*": ["i.tar", "v.tar"]}}}
    res = resolve_data_sources(cands, {"train_datasets": "/a"})
    assert res.values == {"ds": ["/a/i.tar", "/a/v.tar"]}


def test_mapping_builds_dicts():
    src = {"dataset.sources": {"source": "train_datasets", "list": True,
                               "mapping": {"image_dir": "images", "json_file": "ann.json"}}}
    res = resolve_data_sources(src, {"train_datasets": ["/a", "/b"]})
    assert res.values == {"dataset.sources": [
        {"image_dir": "/a/images", "json_file": "/a/ann.json"},
        {"image_dir": "/b/images", "json_file": "/b/ann.json"}]}
    single = {"d": {"source": "eval_dataset", "mapping": {"x": "x.json"}}}
    assert resolve_data_sources(single, {"eval_dataset": "/e"}).values == {"d": {"x": "/e/x.json"}}


def test_multiple_uris_for_single_source_key():
    src = {"k": {"source": "train_datasets", "path": "a", "multiple_sources": False}}
    with pytest.raises(SpecError) as exc:
        resolve_data_sources(src, {"train_datasets": ["/a", "/b"]})
    assert "'k'" in str(exc.value) and "/b" in str(exc.value)
    many = {"k": {"source": "train_datasets", "path": "a", "multiple_sources": True}}
    assert resolve_data_sources(many, {"train_datasets": ["/a", "/b"]}).values == {
        "k": ["/a/a", "/b/a"]}


def test_bad_entries_raise():
    with pytest.raises(SpecError, match="no 'source'"):
        resolve_data_sources({"k": {"path": "a"}}, {})
    with pytest.raises(SpecError, match="neither"):
        resolve_data_sources({"k": {"source": "train_datasets"}}, {})


def test_object_entries_are_duck_typed():
    class Obj:
        source = "train_datasets"
        path = "a.json"
        runtime = None
        list = False
        mapping = None
        path_from_format = None
        optional = False
        multiple_sources = None

    assert as_source(Obj()).path == "a.json"
    assert resolve_data_sources({"k": Obj()}, {"train_datasets": "/r"}).values == {"k": "/r/a.json"}


# ------------------------------------------------------------- real skill files
URIS = {"train_datasets": "s3://b/train", "eval_dataset": "s3://b/eval",
        "inference_dataset": "s3://b/infer", "calibration_dataset": "s3://b/cal"}


@pytest.mark.parametrize("root", ROOTS, ids=lambda p: p.name)
def test_real_mal_sources(root):
    info = _info(root, "tao-train-mask-auto-label")
    res = resolve_data_sources(info["data_sources"]["train"], URIS, data_format=info["data_format"])
    assert res.values == {
        "dataset.train_img_dir": "s3://b/train/images.tar.gz",
        "dataset.train_ann_path": "s3://b/train/annotations.json",
        "dataset.val_img_dir": "s3://b/eval/images.tar.gz",
        "dataset.val_ann_path": "s3://b/eval/annotations.json"}
    assert set(res.archives) == {"dataset.train_img_dir", "dataset.val_img_dir"}
    res = resolve_data_sources(info["data_sources"]["train"], {"train_datasets": "/t"})
    assert res.missing == ["dataset.val_img_dir", "dataset.val_ann_path"]
    inf = resolve_data_sources(info["data_sources"]["inference"], URIS)
    assert inf.values["inference.ann_path"] == "s3://b/infer/annotations.json"


@pytest.mark.parametrize("root", ROOTS, ids=lambda p: p.name)
def test_real_reid_sources(root):
    info = _info(root, "tao-train-reid")
    for action, keys in {"train": ["dataset.train_dataset_dir", "dataset.test_dataset_dir",
                                   "dataset.query_dataset_dir"],
                         "evaluate": ["evaluate.test_dataset", "evaluate.query_dataset"],
                         "inference": ["inference.test_dataset", "inference.query_dataset"]}.items():
        res = resolve_data_sources(info["data_sources"][action], {"train_datasets": "/r"})
        assert sorted(res.values) == sorted(keys)
        assert all(v.startswith("/r/sample_") and v.endswith(".tar.gz") for v in res.values.values())
        assert set(res.archives) == set(keys)


@pytest.mark.parametrize("root", ROOTS, ids=lambda p: p.name)
def test_real_cosmos_sources(root):
    info = _info(root, "tao-finetune-cosmos-reason")
    train = info["data_sources"]["train"]
    res = resolve_data_sources(train, URIS, data_format=info["data_format"])
    assert res.missing == ["custom.train_dataset.annotation_path",
                           "custom.val_dataset.annotation_path"]
    assert res.values == {"custom.train_dataset.media_path": "s3://b/train/images.tar.gz",
                          "custom.val_dataset.media_path": "s3://b/eval/images.tar.gz"}
    res = resolve_data_sources(train, URIS, data_format="llava", placeholders={
        "train_dataset_annotation": "annotations.json",
        "eval_dataset_annotation": "val/annotations.json"})
    assert res.missing == []
    assert res.values["custom.val_dataset.annotation_path"] == "s3://b/eval/val/annotations.json"
    inf = resolve_data_sources(info["data_sources"]["inference"], URIS, data_format="llava")
    assert inf.values == {"media": "s3://b/infer/videos.tar.gz"}
    q = resolve_data_sources(info["data_sources"]["quantize"], URIS, data_format="other")
    assert q.values == {"dataset.media_dir": "s3://b/cal/videos.tar.gz"}


@pytest.mark.parametrize("root", ROOTS, ids=lambda p: p.name)
def test_real_action_recognition_has_no_sources(root):
    info = _info(root, "tao-train-action-recognition")
    assert info["data_sources"] == {}
    res = resolve_data_sources(info["data_sources"].get("train", {}), URIS)
    assert res.values == {} and res.missing == []


def test_with_loader_data_source_objects():
    skill = pytest.importorskip("tao_automl.skill")
    bundle = skill.load_skill(PACKAGED / "tao-train-mask-auto-label")
    res = resolve_data_sources(bundle.info.data_sources["evaluate"], URIS)
    assert res.values == {"dataset.val_img_dir": "s3://b/eval/images.tar.gz",
                          "dataset.val_ann_path": "s3://b/eval/annotations.json"}
