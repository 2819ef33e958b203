"""Property tests (hypothesis): sampled, decoded and enforced values always
respect the parameter bounds, for generated schemas and for every real skill."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from test_skill_helpers import all_skill_dirs, skill_id

from tao_automl.schema import parse_schema
from tao_automl.search import build_search_space, derive_range
from tao_automl.skill import load_skill

SETTINGS = settings(max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])

finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)
# An infinite bound means "unbounded" on its own side only (TAO writes
# `maximum: Infinity`); `minimum: Infinity` / `maximum: -Infinity` are refused.
lower = st.one_of(st.none(), st.just(-math.inf), finite)
upper = st.one_of(st.none(), st.just(math.inf), finite)
bound = st.one_of(st.none(), st.just(math.inf), st.just(-math.inf), finite)  # derive_range takes any


@st.composite
def numeric_node(draw):
    kind = draw(st.sampled_from(["int", "float", "integer", "number"]))
    is_int = kind in ("int", "integer")
    node = {"type": kind, "automl_enabled": True}
    if draw(st.booleans()):
        node["default"] = draw(st.integers(-10_000, 10_000)) if is_int else draw(finite)
    lo, hi = draw(lower), draw(upper)
    if lo is not None:
        node["minimum"] = lo
    if hi is not None:
        node["maximum"] = hi
    cond = draw(st.sampled_from([None, "^ 2", "/ 2", "/ 8"]))
    if cond and is_int:
        node["math_cond"] = cond
    return node


@SETTINGS
@given(nodes=st.lists(numeric_node(), min_size=1, max_size=5), seed=st.integers(0, 2**32 - 1))
def test_generated_numeric_params_sample_within_bounds(nodes, seed):
    schema = parse_schema({"properties": {f"p{i}": n for i, n in enumerate(nodes)}})
    space = build_search_space(schema, {})
    assert set(space.names) | set(space.excluded) == set(schema.params)
    rng = random.Random(seed)
    for _ in range(20):
        values = space.decode(space.sample(rng))
        for p in space.params:
            v = values[p.name]
            assert p.contains(v), (p, v)
            node = nodes[int(p.name[1:])]
            smin, smax = node.get("minimum"), node.get("maximum")
            if smin is not None and math.isfinite(smin):
                assert v >= smin
            if smax is not None and math.isfinite(smax):
                assert v <= smax
            if p.kind == "int":
                assert isinstance(v, int)


@SETTINGS
@given(kind=st.sampled_from(["int", "float"]), d=st.one_of(st.none(), finite),
       lo=bound, hi=bound)
def test_derive_range_is_finite_and_inside_schema_bounds(kind, d, lo, hi):
    try:
        low, high, _ = derive_range(kind, d, lo, hi)
    except ValueError:
        return
    assert math.isfinite(low) and math.isfinite(high) and low <= high
    if lo is not None and math.isfinite(lo):
        assert low >= lo
    if hi is not None and math.isfinite(hi):
        assert high <= hi


@SETTINGS
@given(batch=st.integers(1, 512), inst=st.integers(4, 16), samples=st.one_of(st.none(),
       st.integers(0, 2000)), shards=st.integers(1, 16))
def test_enforce_keeps_batch_valid(batch, inst, samples, shards):
    doc = {"properties": {
        "bs": {"type": "int", "default": 64, "minimum": 1, "maximum": 512, "automl_enabled": True},
        "ni": {"type": "int", "default": 4, "minimum": 4, "maximum": 16}}}
    space = build_search_space(parse_schema(doc), {"bs": 64, "ni": inst},
                               constraints=[{"kind": "multiple_of", "param": "bs", "other": "ni"}])
    p = space.param("bs")
    assume(p.low <= batch <= p.high)
    fixed, notes = space.enforce({"bs": batch}, train_sample_count=samples, shard_count=shards,
                                 batch_key="bs")
    b = fixed["bs"]
    assert p.low <= b <= p.high
    feasible_cap = samples is None or samples // shards >= max(inst, p.low)
    if feasible_cap:
        assert b % inst == 0
        if samples is not None:
            assert b * shards <= samples
    if b != batch:
        assert notes


SKILLS = all_skill_dirs()


@pytest.mark.parametrize("skill_dir", SKILLS, ids=skill_id)
def test_real_skill_spaces_enforced_values_stay_in_bounds(skill_dir):
    b = load_skill(skill_dir)
    space = build_search_space(b.schema("train"), b.template("train"))

    @SETTINGS
    @given(seed=st.integers(0, 2**32 - 1), samples=st.one_of(st.none(), st.integers(1, 500)),
           shards=st.integers(1, 8))
    def check(seed, samples, shards):
        values = space.decode(space.sample(random.Random(seed)))
        fixed, _ = space.enforce(values, train_sample_count=samples, shard_count=shards)
        for p in space.params:
            assert p.contains(fixed[p.name]), (p.name, fixed[p.name])

    check()
