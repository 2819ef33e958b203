"""The DE core's switches measured by ``benchmarks/dehb_sim.py``
(continuation, the mutation strategy, the authors' parent pools, promotion,
the initial design; see benchmarks/RESULTS.md, DEHB).  The mutation strategy
and promotion are settings (``dehb_strategy``, ``dehb_promotion``); the
others are benchmark switches, off by default."""

from __future__ import annotations

import numpy as np
import pytest

from tao_automl.algorithms._de import FINISHED, DEHBCore


def _ask(core, n):
    jobs = [core.ask() for _ in range(n)]
    assert all(j is not None and j != FINISHED for j in jobs)
    return jobs


def _first_two_brackets(**kw):
    """Bracket 0 (9 @ 1, 3 @ 3, 1 @ 9) with fitness told by hand, then bracket
    1's first rung (3 @ 3) all worse than bracket 0's level-1 results."""
    core = DEHBCore(1, min_epochs=1, max_epochs=9, eta=3, seed=0, max_jobs=100, **kw)
    low = _ask(core, 9)
    for i, j in enumerate(low):
        core.tell(j.id, float(i))
    mid = _ask(core, 3)
    for f, j in zip((0.0, 0.1, 0.2), mid, strict=True):
        core.tell(j.id, f)
    top = _ask(core, 1)
    assert top[0].epochs == 9
    core.tell(top[0].id, 0.0)
    b1 = _ask(core, 3)
    assert {j.bracket for j in b1} == {1} and {j.epochs for j in b1} == {3}
    for f, j in zip((5.0, 6.0, 7.0), b1, strict=True):
        core.tell(j.id, f)
    return core, low, mid, top[0], b1


def test_continuation_resumes_promoted_configurations_and_counts_only_extra_epochs():
    core, low, mid, top, _ = _first_two_brackets(continuation=True)
    by_vec = {j.vector.tobytes(): j for j in low}
    for j in mid:  # promoted unchanged 1 -> 3 epochs: resume the 1-epoch job
        src = by_vec[j.vector.tobytes()]
        assert (j.resume, j.start_epoch) == (src.id, 1)
    assert (top.resume, top.start_epoch) == (mid[0].id, 3)  # the best at 3 epochs goes on to 9
    # 9 x 1 + 3 x (3 - 1) + 1 x (9 - 3), then bracket 1's three new 3-epoch jobs from scratch
    assert core.epochs_issued == 9 + 6 + 6 + 9


def test_without_continuation_every_job_trains_from_scratch():
    core, low, mid, top, b1 = _first_two_brackets()
    assert all(j.start_epoch == 0 and j.resume is None for j in [*low, *mid, top, *b1])
    assert core.epochs_issued == 9 + 9 + 9 + 9


def test_continuation_never_resumes_a_failed_job():
    core = DEHBCore(1, min_epochs=1, max_epochs=3, eta=3, seed=0, max_jobs=100, continuation=True)
    low = _ask(core, 3)
    core.tell(low[0].id, None)  # failed: no checkpoint to continue
    core.tell(low[1].id, 0.5)
    core.tell(low[2].id, 0.1)
    up = core.ask()
    assert up.epochs == 3 and np.array_equal(up.vector, low[2].vector)
    assert (up.resume, up.start_epoch) == (low[2].id, 1)
    assert low[0].id not in {src for src, _ in core.trained.values()}


def test_continuation_plans_whole_brackets_at_their_reduced_cost():
    # bracket 0 costs 27 epochs from scratch, 9 + 6 + 6 = 21 with continuation
    full = DEHBCore(1, min_epochs=1, max_epochs=9, eta=3, seed=0, epoch_budget=21)
    assert full.ask() == FINISHED and full.bracket_count == 0  # 27 epochs do not fit
    cont = DEHBCore(1, min_epochs=1, max_epochs=9, eta=3, seed=0, epoch_budget=21, continuation=True)
    jobs = []
    while True:
        j = cont.ask()
        if j is None or j == FINISHED:
            break
        jobs.append(j)
        cont.tell(j.id, float(j.vector[0]))
    assert [j.epochs for j in jobs] == [1] * 9 + [3] * 3 + [9]
    assert cont.epochs_issued == 21


def test_current_to_best_mutation():
    core = DEHBCore(3, min_epochs=1, max_epochs=9, eta=3, mutation_factor=0.5, seed=0,
                    mutation_strategy="currenttobest1")
    pool = [np.full(3, 0.2), np.full(3, 0.6), np.full(3, 0.4)]
    current, best = np.full(3, 0.5), np.full(3, 0.9)
    seen = {round(float(core.mutation(pool, current=current, best=best)[0]), 6) for _ in range(60)}
    # 0.5 + 0.5 (0.9 - 0.5) + 0.5 (a - b) over ordered pairs of distinct pool members
    expected = {round(0.7 + 0.5 * (a - b), 6) for a in (0.2, 0.6, 0.4) for b in (0.2, 0.6, 0.4) if a != b}
    assert seen <= expected and len(seen) >= 4
    # without a best (nothing evaluated yet) it falls back to rand/1
    assert 0.0 <= core.mutation(pool, current=current, best=None)[0] <= 1.0


@pytest.mark.parametrize(("key", "value"), [("mutation_strategy", "best2"), ("parent_pool", "global"),
                                            ("promotion", "halving"), ("init_design", "sobol")])
def test_unknown_variant_names_are_refused(key, value):
    with pytest.raises(ValueError, match=key):
        DEHBCore(1, min_epochs=1, max_epochs=9, **{key: value})


def test_subpopulation_promotion_takes_the_level_best_not_yet_above():
    # bracket 1 (first iteration) promotes from the 3-epoch subpopulation, whose best
    # members came from bracket 0; the very best already runs at 9 epochs
    core, _, mid, _, b1 = _first_two_brackets(parent_pool="subpopulation", continuation=True)
    up = core.ask()
    assert up.bracket == 1 and up.epochs == 9
    assert np.array_equal(up.vector, mid[1].vector)  # fitness 0.1: best not yet in the 9-epoch population
    assert (up.resume, up.start_epoch) == (mid[1].id, 3)
    core2, _, _, _, b1b = _first_two_brackets()  # ours: the bracket's own lower rung
    up2 = core2.ask()
    assert np.array_equal(up2.vector, b1b[0].vector)

