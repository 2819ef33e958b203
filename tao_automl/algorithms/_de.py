"""The DEHB core (Awad, Mallik, Hutter, IJCAI 2021): Hyperband brackets over
integer epoch budgets, one differential-evolution subpopulation per fidelity,
asynchronous.  Pure numpy, no Ray: :mod:`tao_automl.algorithms.dehb` wraps it
as a Ray Tune ``Searcher``; the benchmarks drive it in-process.

Vectors live in the unit hypercube ``[0, 1]^d`` (decoding to real values is
the caller's business).  Fitness is minimised; a failed evaluation has
fitness ``+inf`` and is never promoted, never selected into a population and
never the incumbent.

Geometry (integers only, no float logarithms):

* ``s_max`` = the largest ``s`` with ``min_epochs * eta**s <= max_epochs``;
* fidelity levels ``i = 0..s_max`` train ``max_epochs // eta**(s_max - i)``
  epochs (level ``s_max`` is ``max_epochs`` exactly; every level is
  ``>= min_epochs``);
* one Hyperband iteration runs the brackets ``s = s_max, ..., 0`` (the last
  one evaluates every configuration at full fidelity); bracket ``s`` starts at
  level ``s_max - s`` with ``n0 = ((s_max + 1) // (s + 1)) * eta**s``
  configurations and its rung ``r`` holds ``max(n0 // eta**r, 1)`` (the
  DEHB/BOHB bracket sizes);
* the subpopulation of level ``i`` has as many members as the widest bracket
  evaluates there (at least ``population_size``); members never evaluated
  start with fitness ``+inf``.

Configurations of a rung (DEHB, Algorithm 2, with the measured departures
below):

* first Hyperband iteration, lowest level: unevaluated members of the
  level-0 subpopulation are evaluated as they are (the initial design: a
  Latin hypercube, one point per stratum of every coordinate; the first ones
  are the user's initial points), the rest evolve as below;
* higher rungs of a bracket (``promotion="rank"``, the default): successive
  halving -- the best ``n`` configurations of the bracket's lower rung are
  promoted and run as they are, in every Hyperband iteration;
* otherwise DE evolution: target = the next member of the level's
  subpopulation (round robin); mutant drawn from the *parent pool* -- the
  best configurations of the bracket's lower rung (for a bracket's first
  rung: the best members of the lower level's subpopulation; level 0 uses
  its own subpopulation), completed with the global population when it holds
  fewer than 3 -- by current-to-best/1 (``target + F (best - target) +
  F (a - b)``, the best being the level's best member; the authors'
  ``currenttobest1_bin``) or rand/1 (``a + F (b - c)``, the paper's
  ``rand1_bin``); binomial crossover with the target (``crossover_prob``, one
  coordinate always from the mutant) -- a target never evaluated carries no
  information, so the mutant is taken as it is (benchmark multi-fidelity
  Hartmann-6, 60 seeds in-process: median -1.53 instead of -1.40);
  coordinates leaving ``[0, 1]`` are redrawn uniformly.

Every result goes through DE selection at its level: it replaces its target
when its fitness is no worse.  So each level's subpopulation evolves by DE
(every level is the first rung of one bracket per Hyperband iteration, where
its candidates are mutants bred from the lower level's best), and a
configuration reaches the next fidelity by its rank in the bracket and
enters that level's subpopulation by DE selection.

The paper (``promotion="evolve"``, ``mutation_strategy="rand1"``,
``init_design="random"``) evolves fresh DE mutants on the higher rungs too
after the first iteration, so a configuration measured good at 3 epochs is
never itself trained for 9; a mutant of it is.  Measured in
``benchmarks/dehb_sim.py`` (multi-fidelity Hartmann-6, R = 9, eta 3, 2
slots, median best true value; benchmarks/RESULTS.md, DEHB): rank promotion,
current-to-best/1 and the Latin hypercube together reach -1.98 at 180
epochs (200 seeds; the paper's settings -1.47, random ASHA -1.75), -2.88 at
540 (100 seeds; paper -2.47), -3.26 at 1,800 (40 seeds; paper -3.14), and
-3.04 on the DEHB benchmarks' MF-Hartmann-6 at 300 evaluations (30 seeds;
paper settings -2.61, the authors' DEHB 0.1.2 -2.73).

Asynchronous: a rung starts once every result of the bracket's previous rung
is in; when a configuration is asked for and every open bracket is waiting,
the next bracket starts instead of idling (the authors' parallel DEHB) --
as long as the budget still holds that whole bracket besides what the open
brackets need to finish, so a limited budget never leaves brackets short of
max_epochs.

``mutation_strategy`` and ``promotion`` are user settings
(``dehb_strategy``, ``dehb_promotion``).  Variants kept for the benchmark,
off by default and not exposed as settings (measured by
``benchmarks/dehb_sim.py``):

* ``continuation``: a configuration promoted unchanged resumes the
  checkpoint of its lower-fidelity job (``Job.resume``, ``Job.start_epoch``)
  and counts only the extra epochs against the budget; the Ray searcher does
  not use it (no checkpoint hand-off between trials);
* ``parent_pool="subpopulation"``: the authors' code -- promotions are the
  best members of the lower level's subpopulation not yet in the higher
  one, and a higher rung's parent pool is the best of the lower level's
  subpopulation (not of the bracket's lower rung);
* ``init_design="random"``: uniform draws instead of the Latin hypercube.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import attrs
import numpy as np

from tao_automl.config.settings import DEHB_PROMOTIONS, DEHB_STRATEGIES

__all__ = ["Bracket", "DEHBCore", "Geometry", "Job", "FINISHED", "PROMOTIONS", "STRATEGIES", "core_params", "dehb_params",
           "geometry", "latin_hypercube", "review_plan"]

FINISHED = "FINISHED"  # ask(): no job will ever come again
DEFAULT_MUTATION_FACTOR = 0.5
DEFAULT_CROSSOVER_PROB = 0.5
#: ``dehb_strategy`` values (the authors' names) -> the core's mutation strategy
STRATEGIES = dict(zip(DEHB_STRATEGIES, ("currenttobest1", "rand1"), strict=True))
DEFAULT_STRATEGY = DEHB_STRATEGIES[0]
#: ``dehb_promotion`` values: "rank" (successive halving, measured default) or "evolve" (the paper)
PROMOTIONS = DEHB_PROMOTIONS
DEFAULT_PROMOTION = PROMOTIONS[0]


@attrs.frozen
class Geometry:
    """Fidelity levels and the brackets of one Hyperband iteration."""

    min_epochs: int
    max_epochs: int
    eta: int
    s_max: int
    budgets: tuple[int, ...]  # epochs per level, ascending; budgets[-1] == max_epochs
    brackets: tuple[tuple[tuple[int, int], ...], ...]  # per bracket: (level, configs) per rung

    @property
    def jobs_per_iteration(self) -> int:
        return sum(n for b in self.brackets for _, n in b)

    @property
    def epochs_per_iteration(self) -> int:
        return sum(n * self.budgets[lvl] for b in self.brackets for lvl, n in b)

    def level_sizes(self) -> list[int]:
        """The most configurations any bracket evaluates at each level."""
        sizes = [0] * len(self.budgets)
        for b in self.brackets:
            for lvl, n in b:
                sizes[lvl] = max(sizes[lvl], n)
        return sizes

    def describe(self) -> list[dict[str, Any]]:
        """Brackets for the review: rungs as configs x epochs, epochs spent."""
        out = []
        for i, b in enumerate(self.brackets):
            rungs = [{"configs": n, "epochs": self.budgets[lvl]} for lvl, n in b]
            out.append({"bracket": i, "rungs": rungs, "jobs": sum(n for _, n in b),
                        "epochs": sum(n * self.budgets[lvl] for lvl, n in b)})
        return out


def geometry(min_epochs: int, max_epochs: int, eta: int) -> Geometry:
    """The bracket geometry, computed in integers (see the module doc)."""
    for name, v in (("min_epochs", min_epochs), ("max_epochs", max_epochs), ("eta", eta)):
        if not isinstance(v, int) or isinstance(v, bool):
            raise TypeError(f"{name} must be an int, got {v!r}")
    if min_epochs < 1 or max_epochs < min_epochs or eta < 2:
        raise ValueError(f"need 1 <= min_epochs <= max_epochs and eta >= 2, got {min_epochs}, {max_epochs}, {eta}")
    s_max = 0
    while min_epochs * eta ** (s_max + 1) <= max_epochs:
        s_max += 1
    budgets = tuple(max_epochs // eta ** (s_max - i) for i in range(s_max + 1))
    brackets = []
    for s in range(s_max, -1, -1):
        n0 = ((s_max + 1) // (s + 1)) * eta**s
        brackets.append(tuple((s_max - s + r, max(n0 // eta**r, 1)) for r in range(s + 1)))
    return Geometry(min_epochs, max_epochs, eta, s_max, budgets, tuple(brackets))


@attrs.define
class Job:
    """One evaluation: ``vector`` trained for ``epochs`` (level ``level``)."""

    id: int
    bracket: int
    rung: int
    level: int
    epochs: int
    vector: np.ndarray
    target: int  # index in the level's subpopulation (DE selection)
    start_epoch: int = 0  # > 0: continues job ``resume``'s checkpoint, trains only the extra epochs
    resume: int | None = None  # id of the finished job whose checkpoint this one continues


@attrs.define
class Bracket:
    """One running bracket (successive halving over its rungs)."""

    index: int  # global bracket counter
    rungs: tuple[tuple[int, int], ...]
    rung: int = 0
    sizes: list[int] = attrs.field(factory=list)  # configs of each rung (promotion may shrink it)
    issued: int = 0  # jobs issued in the current rung
    results: list[list[tuple[np.ndarray, float]]] = attrs.field(factory=list)  # per rung
    pending: set[int] = attrs.field(factory=set)
    done: bool = False


class DEHBCore:
    """Ask/tell DEHB.

    ``ask()`` returns a :class:`Job`, ``None`` (nothing to start until a
    result arrives) or :data:`FINISHED`; ``tell(job_id, fitness)`` with
    ``fitness`` ``None`` or ``inf`` for a failed job.  Budgets: ``max_jobs``
    evaluations and, optionally, ``epoch_budget`` epochs over all jobs.  With
    ``whole_brackets`` (the default) a bracket starts only when the budget
    holds all of its jobs besides what the open brackets still need, so every
    bracket started ends at max_epochs and the run may use less than the
    budget; ``whole_brackets=False`` spends the budget job by job, cutting the
    last bracket short (how the authors' package counts function evaluations).  ``repair`` maps a candidate vector
    to the feasible vector actually evaluated (constraints).  ``mutation_strategy``
    (``"currenttobest1"`` or ``"rand1"``), ``promotion`` (``"rank"`` or
    ``"evolve"``), ``init_design`` (``"lhs"`` or ``"random"``),
    ``continuation`` and ``parent_pool``: see the module doc.
    """

    def __init__(
        self,
        dims: int,
        *,
        min_epochs: int,
        max_epochs: int,
        eta: int = 3,
        mutation_factor: float = 0.5,
        crossover_prob: float = 0.5,
        population_size: int = 0,
        max_jobs: int | None = None,
        epoch_budget: int | None = None,
        seed: int | None = None,
        initial: Sequence[Sequence[float]] = (),
        repair: Callable[[np.ndarray], np.ndarray] | None = None,
        whole_brackets: bool = True,
        continuation: bool = False,
        mutation_strategy: str = "currenttobest1",
        parent_pool: str = "bracket",
        promotion: str = DEFAULT_PROMOTION,
        init_design: str = "lhs",
    ) -> None:
        if dims < 1:
            raise ValueError("DEHB needs at least one dimension")
        self.dims = int(dims)
        self.geo = geometry(min_epochs, max_epochs, eta)
        self.F = float(mutation_factor)
        self.CR = float(crossover_prob)
        self.max_jobs = max_jobs
        self.epoch_budget = epoch_budget
        self.repair = repair
        self.whole_brackets = bool(whole_brackets)
        self.continuation = bool(continuation)
        if mutation_strategy not in ("rand1", "currenttobest1"):
            raise ValueError(f"mutation_strategy must be 'rand1' or 'currenttobest1', got {mutation_strategy!r}")
        self.mutation_strategy = mutation_strategy
        if parent_pool not in ("bracket", "subpopulation"):
            raise ValueError(f"parent_pool must be 'bracket' or 'subpopulation', got {parent_pool!r}")
        self.parent_pool = parent_pool
        if promotion not in PROMOTIONS:
            raise ValueError(f"promotion must be one of {PROMOTIONS}, got {promotion!r}")
        self.promotion = promotion
        if init_design not in ("lhs", "random"):
            raise ValueError(f"init_design must be 'lhs' or 'random', got {init_design!r}")
        self.trained: dict[bytes, tuple[int, int]] = {}  # vector -> (job id, epochs) of its longest finished job
        self.rng = np.random.default_rng(seed)
        sizes = [max(n, int(population_size)) for n in self.geo.level_sizes()]
        self.pops = [self.rng.random((n, self.dims)) for n in sizes]
        if init_design == "lhs":  # the level-0 members are the initial design
            self.pops[0] = latin_hypercube(sizes[0], self.dims, self.rng)
        self.fit = [np.full(n, np.inf) for n in sizes]
        self.tried = [np.zeros(n, dtype=bool) for n in sizes]
        self.next_target = [0] * len(sizes)
        init = [np.clip(np.asarray(v, dtype=float), 0.0, 1.0) for v in initial][: sizes[0]]
        for i, v in enumerate(init):
            self.pops[0][i] = v
        self.brackets: list[Bracket] = []
        self.bracket_count = 0
        self.jobs: dict[int, Job] = {}
        self.n_jobs = 0
        self.seeded = 0  # finished jobs of an earlier run told by seed_result
        self.epochs_issued = 0
        self.history: list[tuple[int, int, float]] = []  # (job id, level, fitness)
        self.incumbent: tuple[np.ndarray, float, int] | None = None  # (vector, fitness, level)

    # -- budgets ----------------------------------------------------------------
    def _affordable(self, epochs: int) -> bool:
        if self.max_jobs is not None and self.n_jobs >= self.max_jobs:
            return False
        return self.epoch_budget is None or self.epochs_issued + epochs <= self.epoch_budget

    @property
    def pending(self) -> int:
        return sum(len(b.pending) for b in self.brackets)

    # -- ask --------------------------------------------------------------------
    def ask(self) -> Job | None | str:
        for b in self.brackets:
            job = self._next_in(b)
            if job is not None:
                return job
        # every open bracket waits (or none is open): start the next one
        if self._can_start():
            b = self._open_bracket()
            job = self._next_in(b)
            if job is not None:
                return job
        return None if self.pending else FINISHED

    def _reserved(self) -> tuple[int, int]:
        """Jobs and epochs the open brackets still need to reach max_epochs."""
        jobs = epochs = 0
        for b in self.brackets:
            for r in range(b.rung, len(b.rungs)):
                n = b.sizes[r] - (b.issued if r == b.rung else 0)
                jobs += n
                epochs += n * self.geo.budgets[b.rungs[r][0]]
        return jobs, epochs

    def _can_start(self) -> bool:
        """Start the next bracket only if the budget still holds all of it
        after what the open brackets need (``whole_brackets``), so every
        bracket started reaches max_epochs; otherwise (the authors' feval
        budget) whenever one more job fits."""
        tmpl = self.geo.brackets[self.bracket_count % len(self.geo.brackets)]
        if not self.whole_brackets:
            return self._affordable(self.geo.budgets[tmpl[0][0]])
        jobs, epochs = self._reserved()
        jobs += sum(n for _, n in tmpl)
        epochs += self._bracket_epochs(tmpl, self.bracket_count)
        return ((self.max_jobs is None or self.n_jobs + jobs <= self.max_jobs)
                and (self.epoch_budget is None or self.epochs_issued + epochs <= self.epoch_budget))

    def _bracket_epochs(self, tmpl: tuple[tuple[int, int], ...], index: int) -> int:
        """Epochs bracket number ``index`` trains: with ``continuation`` a
        first-iteration bracket promotes unchanged configurations, which
        train only the epochs above their lower rung."""
        budgets = self.geo.budgets
        if not (self.continuation and self._promotes(index)):
            return sum(n * budgets[lvl] for lvl, n in tmpl)
        return sum(n * (budgets[lvl] - (budgets[tmpl[r - 1][0]] if r else 0)) for r, (lvl, n) in enumerate(tmpl))

    def _open_bracket(self) -> Bracket:
        tmpl = self.geo.brackets[self.bracket_count % len(self.geo.brackets)]
        b = Bracket(index=self.bracket_count, rungs=tmpl, sizes=[n for _, n in tmpl],
                    results=[[] for _ in tmpl])
        self.bracket_count += 1
        self.brackets.append(b)
        return b

    def _first_iteration(self, b: Bracket) -> bool:
        return b.index < len(self.geo.brackets)

    def _promotes(self, index: int) -> bool:
        """Whether bracket ``index``'s higher rungs promote the lower rung's
        best unchanged (successive halving) rather than evolve mutants."""
        return self.promotion == "rank" or index < len(self.geo.brackets)

    def _next_in(self, b: Bracket) -> Job | None:
        if b.done:
            return None
        if b.issued >= b.sizes[b.rung]:
            if b.pending or len(b.results[b.rung]) < b.issued:
                return None  # the rung's results are not all in: wait
            if not self._advance(b):
                return None
        level = b.rungs[b.rung][0]
        epochs = self.geo.budgets[level]
        cost = epochs
        if self.continuation and b.rung > 0 and self._promotes(b.index):  # an unchanged promotion
            cost -= self.geo.budgets[b.rungs[b.rung - 1][0]]
        if not self._affordable(cost):
            return None
        vector, target = self._candidate(b, level)
        if self.repair is not None:
            vector = np.clip(np.asarray(self.repair(vector), dtype=float), 0.0, 1.0)
        start, resume = 0, None
        if self.continuation:
            prev = self.trained.get(np.asarray(vector, dtype=float).tobytes())
            if prev is not None and prev[1] < epochs:
                resume, start = prev
        job = Job(id=self.n_jobs, bracket=b.index, rung=b.rung, level=level, epochs=epochs,
                  vector=vector, target=target, start_epoch=start, resume=resume)
        self.n_jobs += 1
        self.epochs_issued += epochs - start
        self.jobs[job.id] = job
        b.issued += 1
        b.pending.add(job.id)
        return job

    def _advance(self, b: Bracket) -> bool:
        """Move ``b`` to its next rung; False (and done) when it has none."""
        if b.rung + 1 >= len(b.rungs):
            b.done = True
            self._drop_done()
            return False
        b.rung += 1
        b.issued = 0
        if self._promotes(b.index):
            # successive halving: only configurations that produced a value move up
            finite = sum(1 for _, f in b.results[b.rung - 1] if math.isfinite(f))
            b.sizes[b.rung] = min(b.sizes[b.rung], finite)
            if b.sizes[b.rung] == 0:
                b.done = True
                self._drop_done()
                return False
        return True

    def _drop_done(self) -> None:
        self.brackets = [b for b in self.brackets if not b.done]

    def _ranked(self, results: list[tuple[np.ndarray, float]]) -> list[np.ndarray]:
        good = [(v, f) for v, f in results if math.isfinite(f)]
        good.sort(key=lambda t: t[1])
        return [v for v, _ in good]

    def _promotions(self, b: Bracket, level: int) -> list[np.ndarray]:
        """The authors' first-iteration promotion: the best evaluated members
        of the lower level's subpopulation not yet in this level's one nor
        promoted by this rung already."""
        lower = level - 1
        order = np.argsort(self.fit[lower], kind="stable")
        taken = [v for v, _ in b.results[b.rung]] + [self.jobs[j].vector for j in b.pending if j in self.jobs]
        out = []
        for i in order:
            v = self.pops[lower][i]
            if not math.isfinite(self.fit[lower][i]):
                break
            if any(np.array_equal(v, w) for w in self.pops[level]) or any(np.array_equal(v, w) for w in taken):
                continue
            out.append(v)
        return out

    def _target(self, level: int) -> int:
        t = self.next_target[level]
        self.next_target[level] = (t + 1) % len(self.pops[level])
        return t

    def _candidate(self, b: Bracket, level: int) -> tuple[np.ndarray, int]:
        target = self._target(level)
        first = self._first_iteration(b)
        if b.rung > 0 and self._promotes(b.index):
            promoted = self._ranked(b.results[b.rung - 1])
            if self.parent_pool == "subpopulation":
                fresh = self._promotions(b, level)
                if fresh:
                    return fresh[0].copy(), target
            return promoted[b.issued].copy(), target
        if first and level == 0 and not self.tried[0][target]:
            self.tried[0][target] = True  # the initial design (initial points first)
            return self.pops[0][target].copy(), target
        n = b.sizes[b.rung]
        if b.rung > 0 and self.parent_pool != "subpopulation":
            pool = self._ranked(b.results[b.rung - 1])[:n]
        elif level > 0:
            order = np.argsort(self.fit[level - 1], kind="stable")
            pool = [self.pops[level - 1][i] for i in order[:n] if math.isfinite(self.fit[level - 1][i])]
        else:
            pool = list(self.pops[0])
        mutant = self.mutation(pool, current=self.pops[level][target], best=self._best(level))
        if not self.tried[level][target]:
            # a member never evaluated holds no information: crossing over with
            # it would only mix random coordinates into the mutant
            self.tried[level][target] = True
            return mutant, target
        return self.crossover(self.pops[level][target], mutant), target

    # -- DE operators -------------------------------------------------------------
    def _global_pool(self) -> list[np.ndarray]:
        return [v for pop in self.pops for v in pop]

    def _best(self, level: int) -> np.ndarray | None:
        """The best member of the level's subpopulation (else the incumbent)."""
        fit = self.fit[level]
        i = int(np.argmin(fit))
        if math.isfinite(fit[i]):
            return self.pops[level][i]
        return None if self.incumbent is None else self.incumbent[0]

    def mutation(self, pool: Sequence[np.ndarray], current: np.ndarray | None = None,
                 best: np.ndarray | None = None) -> np.ndarray:
        """rand/1: ``a + F (b - c)`` with three distinct members of ``pool``
        (completed from the global population when it holds fewer than 3);
        current-to-best/1 (``mutation_strategy``, when ``current`` and ``best``
        are known): ``current + F (best - current) + F (a - b)``;
        coordinates outside ``[0, 1]`` are redrawn uniformly."""
        pool = list(pool)
        if len(pool) < 3:
            extra = self._global_pool()
            pool = pool + [extra[i] for i in self.rng.permutation(len(extra))]
        while len(pool) < 3:  # tiny populations: random donors
            pool.append(self.rng.random(self.dims))
        i, j, k = self.rng.choice(len(pool), size=3, replace=False)
        if self.mutation_strategy == "currenttobest1" and current is not None and best is not None:
            mutant = current + self.F * (best - current) + self.F * (pool[i] - pool[j])
        else:
            mutant = pool[i] + self.F * (pool[j] - pool[k])
        out = (mutant < 0.0) | (mutant > 1.0)
        if out.any():
            mutant = mutant.copy()
            mutant[out] = self.rng.random(int(out.sum()))
        return mutant

    def crossover(self, target: np.ndarray, mutant: np.ndarray) -> np.ndarray:
        """Binomial crossover: each coordinate from the mutant with probability
        ``crossover_prob``, one random coordinate always."""
        take = self.rng.random(self.dims) < self.CR
        take[self.rng.integers(self.dims)] = True
        return np.where(take, mutant, target).astype(float)

    # -- tell -------------------------------------------------------------------
    def tell(self, job_id: int, fitness: float | None) -> None:
        job = self.jobs.pop(job_id, None)
        if job is None:
            return
        f = math.inf if fitness is None or not math.isfinite(float(fitness)) else float(fitness)
        self.history.append((job_id, job.level, f))
        for b in self.brackets:
            if b.index == job.bracket:
                b.pending.discard(job_id)
                if b.rung == job.rung:
                    b.results[job.rung].append((job.vector, f))
                break
        self.tried[job.level][job.target] = True
        if math.isfinite(f):
            key = np.asarray(job.vector, dtype=float).tobytes()
            if key not in self.trained or self.trained[key][1] < job.epochs:
                self.trained[key] = (job.id, job.epochs)
        if math.isfinite(f) and f <= self.fit[job.level][job.target]:  # DE selection
            self.pops[job.level][job.target] = job.vector
            self.fit[job.level][job.target] = f
        if math.isfinite(f):
            inc = self.incumbent
            if inc is None or (job.level, -f) > (inc[2], -inc[1]):
                self.incumbent = (job.vector.copy(), f, job.level)

    def seed_result(self, vector: Sequence[float], epochs: int, fitness: float | None, bracket: int = -1) -> None:
        """Rebuild from a finished job of an earlier run (the ledger, when
        Tune's saved searcher is lost): its epochs count against
        ``epoch_budget`` (``max_jobs`` is then the jobs still to run: the
        runner lowers ``max_recommendations`` by the settled jobs); a success
        joins its level's subpopulation (into a member never evaluated, else
        in place of the worst member if it is better) and may become the
        incumbent; brackets up to ``bracket`` count as started, so the next
        one continues the Hyperband iterations (a first iteration's random
        design is not drawn again)."""
        v = np.clip(np.asarray(vector, dtype=float), 0.0, 1.0)
        epochs = int(epochs)
        level = max((i for i, b in enumerate(self.geo.budgets) if b <= epochs), default=0)
        self.seeded += 1
        self.epochs_issued += epochs
        self.bracket_count = max(self.bracket_count, int(bracket) + 1)
        f = math.inf if fitness is None or not math.isfinite(float(fitness)) else float(fitness)
        self.history.append((-1, level, f))
        if not math.isfinite(f):
            return
        fit = self.fit[level]
        empty = np.flatnonzero(~np.isfinite(fit))
        slot = int(empty[0]) if empty.size else int(np.argmax(fit))
        if f <= fit[slot]:
            self.pops[level][slot] = v
            fit[slot] = f
            self.tried[level][slot] = True
        key = v.tobytes()
        if key not in self.trained or self.trained[key][1] < epochs:
            self.trained[key] = (-1, epochs)
        inc = self.incumbent
        if inc is None or (level, -f) > (inc[2], -inc[1]):
            self.incumbent = (v.copy(), f, level)

    # -- state ------------------------------------------------------------------
    def get_state(self) -> dict[str, Any]:
        return dict(self.__dict__, repair=None)

    def set_state(self, state: dict[str, Any]) -> None:
        repair = self.repair
        self.__dict__.update(state)
        self.repair = repair


def latin_hypercube(n: int, dims: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` points of ``[0, 1]^dims``, one in each of the ``n`` equal strata
    of every coordinate (McKay et al. 1979)."""
    strata = np.stack([rng.permutation(n) for _ in range(dims)], axis=1) if n else np.zeros((0, dims))
    return (strata + rng.random((n, dims))) / max(n, 1)


def dehb_params(settings: Any) -> dict[str, Any]:
    """mutation_factor, crossover_prob (None: 0.5 each), population_size,
    strategy and promotion (None: current-to-best/1, rank) of ``settings``."""
    mf, cr = settings.mutation_factor, settings.crossover_prob
    strategy = settings.dehb_strategy or DEFAULT_STRATEGY
    promotion = settings.dehb_promotion or DEFAULT_PROMOTION
    return {
        "mutation_factor": DEFAULT_MUTATION_FACTOR if mf is None else float(mf),
        "crossover_prob": DEFAULT_CROSSOVER_PROB if cr is None else float(cr),
        "population_size": int(settings.population_size),
        "dehb_strategy": strategy,
        "dehb_promotion": promotion,
    }


def core_params(settings: Any) -> dict[str, Any]:
    """:func:`dehb_params` as :class:`DEHBCore` keyword arguments."""
    p = dehb_params(settings)
    return {"mutation_factor": p["mutation_factor"], "crossover_prob": p["crossover_prob"],
            "population_size": p["population_size"], "mutation_strategy": STRATEGIES[p["dehb_strategy"]],
            "promotion": p["dehb_promotion"]}


def review_plan(settings: Any, max_epochs: int | None) -> dict[str, Any]:
    """What review shows for dehb: the brackets (configs x epochs per rung)
    and the jobs and epochs the budget buys, played in bracket order with
    every job succeeding (failures only shrink promotions)."""
    if not max_epochs or settings.min_epochs > max_epochs or settings.reduction_factor < 2:
        return {}
    geo = geometry(int(settings.min_epochs), int(max_epochs), int(settings.reduction_factor))
    p = dehb_params(settings)
    core = DEHBCore(1, min_epochs=geo.min_epochs, max_epochs=geo.max_epochs, eta=geo.eta, seed=0,
                    max_jobs=int(settings.max_recommendations), epoch_budget=settings.epoch_budget,
                    population_size=p["population_size"], promotion=p["dehb_promotion"])
    full = 0
    while True:
        job = core.ask()
        if job is None or job == FINISHED:
            break
        full += int(job.epochs == geo.max_epochs)
        core.tell(job.id, float(job.id))
    return {
        "fidelity_levels": list(geo.budgets),
        "brackets": geo.describe(),
        "per_hyperband_iteration": {"jobs": geo.jobs_per_iteration, "epochs": geo.epochs_per_iteration},
        "planned_jobs": core.n_jobs,
        "planned_epochs": core.epochs_issued,
        "planned_full_fidelity_jobs": full,
        "brackets_started": core.bracket_count,
        "population_sizes": [len(pop) for pop in core.pops],
        **p,
    }
