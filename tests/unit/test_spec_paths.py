"""Dotted/indexed spec paths: parser, get/set walk, flatten (incl. property tests)."""

from __future__ import annotations

import copy

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tao_automl.errors import SpecError
from tao_automl.spec.paths import flatten, format_path, get_path, has_path, parse_path, set_path


@pytest.mark.parametrize(
    "text,expected",
    [
        ("a", ("a",)),
        ("train.optim.lr", ("train", "optim", "lr")),
        ("a.b[0].c", ("a", "b", 0, "c")),
        ("a[0][1]", ("a", 0, 1)),
        ('a["key.with.dots"].b', ("a", "key.with.dots", "b")),
        ("a['x y']", ("a", "x y")),
        ('a["q\\"uote"]', ("a", 'q"uote')),
        ('["top.level"]', ("top.level",)),
        ("train.gpu_ids.0", ("train", "gpu_ids", "0")),
        ("model-name.x_1", ("model-name", "x_1")),
    ],
)
def test_parse_path_examples(text, expected):
    assert parse_path(text) == expected
    assert parse_path(format_path(expected)) == expected


@pytest.mark.parametrize(
    "bad", ["", ".a", "a.", "a..b", "a[", "a[]", "a[x]", "a]", "a[0", "a b", 'a["x', "a.[0]",
            'a[""]', "a[0]b"])
def test_parse_path_rejects_garbage(bad):
    with pytest.raises(SpecError) as exc:
        parse_path(bad)
    assert repr(bad) in str(exc.value) or bad == ""


def test_negative_index_is_rejected_naming_the_path():
    with pytest.raises(SpecError, match=r"negative list index.*a\[-1\]"):
        parse_path("a[-1]")
    with pytest.raises(SpecError):
        parse_path(("a", -1))


def test_non_string_path_raises_spec_error():
    for bad in (None, 3, 1.5, ("a", None), ("a", True), ()):
        with pytest.raises(SpecError):
            parse_path(bad)


def test_set_path_creates_nested_dicts_and_never_dotted_keys():
    spec = {"train": {"lr": 1}}
    set_path(spec, "train.optim.momentum", 0.9)
    set_path(spec, "custom.val_dataset.annotation_path", "s3://x/a.json")
    assert spec == {"train": {"lr": 1, "optim": {"momentum": 0.9}},
                    "custom": {"val_dataset": {"annotation_path": "s3://x/a.json"}}}
    assert all("." not in k for k in spec) and all("." not in k for k in spec["train"])
    assert "train.optim.momentum" not in spec


def test_set_path_lists_index_append_and_create():
    spec = {"train": {"gpu_ids": [0]}}
    set_path(spec, "train.gpu_ids[0]", 3)
    set_path(spec, "train.gpu_ids[1]", 4)  # equal to length -> append
    set_path(spec, "train.gpu_ids.2", 5)  # digit name on a list -> index
    set_path(spec, "dataset.sources[0].image_dir", "/img")  # creates list + dict
    assert spec["train"]["gpu_ids"] == [3, 4, 5]
    assert spec["dataset"] == {"sources": [{"image_dir": "/img"}]}


def test_set_path_out_of_range_names_path_and_value():
    spec = {"a": {"b": [1, 2]}}
    with pytest.raises(SpecError) as exc:
        set_path(spec, "a.b[5]", 0)
    msg = str(exc.value)
    assert "a.b[5]" in msg and "[1, 2]" in msg and "<= 2" in msg
    assert exc.value.key == "a.b[5]"


def test_set_path_into_scalar_names_path_and_value():
    spec = {"train": {"lr": 0.1}}
    with pytest.raises(SpecError) as exc:
        set_path(spec, "train.lr.value", 1)
    assert "train.lr.value" in str(exc.value) and "0.1" in str(exc.value)
    assert exc.value.value == 0.1
    with pytest.raises(SpecError, match="scalar"):
        set_path(spec, "train.lr[0]", 1)


def test_key_on_list_is_impossible():
    spec = {"a": [1, 2]}
    with pytest.raises(SpecError, match="mapping key was used on a list"):
        set_path(spec, "a.name", 1)
    with pytest.raises(SpecError):
        get_path(spec, "a.name")


def test_set_path_replaces_null_intermediate():
    spec = {"custom": {"vision": None}}
    set_path(spec, "custom.vision.fps", 2)
    assert spec == {"custom": {"vision": {"fps": 2}}}


def test_get_path_default_and_missing():
    spec = {"a": {"b": [10, {"c": 1}]}}
    assert get_path(spec, "a.b[1].c") == 1
    assert get_path(spec, "a.b.0") == 10
    assert get_path(spec, "a.x", default=None) is None
    assert get_path(spec, "a.b[7]", default="d") == "d"
    assert has_path(spec, "a.b[1].c") and not has_path(spec, "a.z")
    with pytest.raises(SpecError, match="not found"):
        get_path(spec, "a.x")
    with pytest.raises(SpecError, match="scalar"):
        get_path(spec, "a.b[0].c", default=None)


def test_flatten_dicts_lists_and_quoting():
    spec = {"a": {"b": 1, "c": [1, 2], "d": {}}, "x.y": {"z": None}}
    assert flatten(spec) == {"a.b": 1, "a.c": [1, 2], "a.d": {}, '["x.y"].z': None}
    assert flatten(spec, lists=True)["a.c[1]"] == 2
    for key, value in flatten(spec, lists=True).items():
        assert get_path(spec, key) == value


# ---------------------------------------------------------------- property tests
_key = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
    min_size=1, max_size=8)
_segment = st.one_of(_key, st.integers(min_value=0, max_value=3))
_paths = st.lists(_segment, min_size=1, max_size=6).filter(lambda p: isinstance(p[0], str))


@settings(max_examples=300, deadline=None)
@given(_paths)
def test_format_parse_round_trip(segments):
    path = tuple(segments)
    assert parse_path(format_path(path)) == path


def _realise(segments):
    """Make a path walkable from an empty spec: indices become 0 (append)."""
    return tuple(0 if isinstance(s, int) else s for s in segments)


@settings(max_examples=300, deadline=None)
@given(_paths, st.one_of(st.integers(), st.text(max_size=5), st.floats(allow_nan=False)))
def test_set_then_get_round_trip(segments, value):
    path = _realise(segments)
    # digit-only names would be indices on lists; keep them unambiguous here
    path = tuple(s if not (isinstance(s, str) and s.isdigit()) else s + "k" for s in path)
    spec: dict = {}
    text = format_path(path)
    set_path(spec, text, value)
    assert get_path(spec, text) == value
    assert get_path(spec, path) == value
    before = copy.deepcopy(spec)
    set_path(spec, text, value)  # idempotent
    assert spec == before


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=20))
def test_garbage_paths_raise_only_spec_error(text):
    try:
        segs = parse_path(text)
    except SpecError:
        return
    assert segs and all(isinstance(s, (str, int)) for s in segs)
    assert parse_path(format_path(segs)) == segs


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=20), st.recursive(
    st.one_of(st.integers(), st.none(), st.text(max_size=3)),
    lambda kids: st.one_of(st.lists(kids, max_size=3),
                           st.dictionaries(st.text(max_size=3), kids, max_size=3)),
    max_leaves=8))
def test_walks_on_random_specs_raise_only_spec_error(text, sub):
    spec = {"root": sub}
    try:
        get_path(spec, "root" + text, default=None)
        set_path(spec, "root" + text, 1)
    except SpecError:
        pass
