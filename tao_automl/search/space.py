"""The :class:`SearchSpace`: conversion to Ray Tune, sampling, decoding,
constraint enforcement, review rows and (de)serialization.

Weighted categoricals: Ray Tune's ``tune.choice`` has no weights and most
searchers (Optuna, HyperOpt, BOHB) cannot use ``tune.sample_from``.  So
:meth:`SearchSpace.to_ray` emits a plain ``tune.choice`` (searchers learn the
distribution themselves) and :meth:`SearchSpace.sample` draws with the
``option_weights`` -- random search should sample through it (e.g. feed
its draws as ``points_to_evaluate``).  ``to_ray(weighted=True)`` instead emits
``tune.sample_from`` for weighted parameters, usable only with Ray's
``BasicVariantGenerator`` (plain random/grid search).
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from typing import Any

import attrs

from tao_automl.config.convert import converter
from tao_automl.errors import SearchSpaceError
from tao_automl.search.constraints import enforce_values
from tao_automl.search.params import Constraint, SearchParam

__all__ = ["SearchSpace"]

# a bound or step stays the int or float it was written as
converter.register_structure_hook(float | int | None, lambda v, _t: v)


@attrs.frozen
class SearchSpace:
    """A schema-gated search space.

    ``params`` are searched; ``excluded`` maps parameter paths to why they
    are not; ``constraints`` are enforced by :meth:`enforce`; ``context``
    holds template scalar values that constraints may refer to.
    """

    params: list[SearchParam] = attrs.field(factory=list)
    excluded: dict[str, str] = attrs.field(factory=dict)
    constraints: list[Constraint] = attrs.field(factory=list)
    context: dict[str, Any] = attrs.field(factory=dict)
    skill_name: str = ""
    source: str = ""

    @property
    def names(self) -> list[str]:
        """Searched parameter paths, in order."""
        return [p.name for p in self.params]

    def param(self, name: str) -> SearchParam:
        """The parameter called ``name`` (SearchSpaceError when absent)."""
        for p in self.params:
            if p.name == name:
                return p
        raise SearchSpaceError("parameter not in the search space", file=self.source, key=name,
                               expected=f"one of {self.names}")

    # ------------------------------------------------------------------ Ray
    def to_ray(self, *, weighted: bool = False) -> dict[str, Any]:
        """Ray Tune domains keyed by flat dotted keys (see module docstring)."""
        from ray import tune

        space: dict[str, Any] = {}
        for p in self.params:
            if p.options is not None:
                if weighted and p.weights:
                    space[p.name] = tune.sample_from(_weighted_sampler(p))
                else:
                    space[p.name] = tune.choice(list(p.options))
            elif p.encoding == "pow2":
                lo, hi = _exp_range(p)
                space[p.name] = tune.randint(lo, hi + 1)
            elif p.kind == "int":
                for key in p.keys():
                    if p.step:
                        space[key] = tune.qrandint(int(p.low), int(p.high), int(p.step))
                    elif p.log:
                        space[key] = tune.lograndint(int(p.low), int(p.high) + 1)
                    else:
                        space[key] = tune.randint(int(p.low), int(p.high) + 1)
            elif p.step:
                space[p.name] = tune.quniform(p.low, p.high, p.step)
            elif p.log:
                space[p.name] = tune.loguniform(p.low, p.high)
            else:
                space[p.name] = tune.uniform(p.low, p.high)
        return space

    # ------------------------------------------------------------- sampling
    def sample(self, rng: random.Random) -> dict[str, Any]:
        """One random config in the searcher encoding (same keys as :meth:`to_ray`);
        categorical draws honour ``option_weights``."""
        out: dict[str, Any] = {}
        for p in self.params:
            if p.options is not None:
                out[p.name] = rng.choices(list(p.options), weights=p.weights)[0] if p.weights \
                    else rng.choice(list(p.options))
            elif p.encoding == "pow2":
                out[p.name] = rng.randint(*_exp_range(p))
            elif p.kind == "int":
                for key in p.keys():
                    if p.step:
                        out[key] = rng.randint(int(p.low // p.step), int(p.high // p.step)) * int(p.step)
                    elif p.log:
                        v = int(round(math.exp(rng.uniform(math.log(p.low), math.log(p.high)))))
                        out[key] = min(max(v, int(p.low)), int(p.high))
                    else:
                        out[key] = rng.randint(int(p.low), int(p.high))
            elif p.step:
                n = rng.randint(math.ceil(p.low / p.step - 1e-9), math.floor(p.high / p.step + 1e-9))
                out[p.name] = min(max(n * p.step, p.low), p.high)
            elif p.log:
                out[p.name] = min(max(math.exp(rng.uniform(math.log(p.low), math.log(p.high))),
                                      p.low), p.high)
            else:
                out[p.name] = rng.uniform(p.low, p.high)
        return out

    def decode(self, config: Mapping[str, Any]) -> dict[str, Any]:
        """Map a searcher config to real hyperparameter values (dotted paths).

        Power-of-2 exponents become ``2 ** e``; ``name[i]`` list keys become
        one strictly increasing list; ints are made ``int``.  Keys that are
        not parameters of this space pass through unchanged.  Cross-parameter
        rules are applied by :meth:`enforce`, not here.
        """
        out: dict[str, Any] = {}
        used: set[str] = set()
        for p in self.params:
            keys = p.keys()
            if not all(k in config for k in keys):
                continue
            used.update(keys)
            if p.encoding == "pow2":
                out[p.name] = int(2 ** int(round(config[p.name])))
            elif p.encoding == "sorted_list":
                out[p.name] = _increasing([int(round(config[k])) for k in keys], int(p.low), int(p.high))
            elif p.options is not None:
                out[p.name] = config[p.name]
            elif p.kind == "int":
                out[p.name] = int(round(config[p.name]))
            else:
                out[p.name] = float(config[p.name])
        for k, v in config.items():
            if k not in used:
                out[k] = v
        return out

    def encode(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """Inverse of :meth:`decode`: real values -> searcher encoding (e.g. for
        ``points_to_evaluate``).  Keys that are not parameters pass through."""
        out: dict[str, Any] = {}
        names = {p.name: p for p in self.params}
        for k, v in values.items():
            p = names.get(k)
            if p is not None and p.encoding == "pow2":
                out[k] = int(round(math.log2(v)))
            elif p is not None and p.encoding == "sorted_list":
                out.update(zip(p.keys(), v, strict=True))
            else:
                out[k] = v
        return out

    def default_config(self) -> dict[str, Any]:
        """Encoded config of every parameter's (valid) default; parameters
        without one are left out."""
        return self.encode({p.name: p.default for p in self.params if p.default is not None})

    def enforce(self, values: dict[str, Any], *, train_sample_count: int | None = None,
                shard_count: int = 1, batch_key: str | None = None
                ) -> tuple[dict[str, Any], list[str]]:
        """Apply cross-parameter constraints and batch caps to decoded values.

        Returns the fixed values and human-readable adjustment notes.
        """
        return enforce_values(values, {p.name: p for p in self.params}, self.constraints,
                              self.context, train_sample_count=train_sample_count,
                              shard_count=shard_count, batch_key=batch_key)

    # --------------------------------------------------------------- review
    def review_rows(self) -> list[dict[str, Any]]:
        """One row per searched parameter for the launch review, then one per exclusion."""
        rows = []
        for p in self.params:
            row: dict[str, Any] = {"name": p.name, "type": p.kind, "default": p.default}
            if p.options is not None:
                row["options"] = list(p.options)
                if p.weights:
                    row["weights"] = list(p.weights)
            else:
                row["minimum"], row["maximum"] = p.low, p.high
            row["log"] = p.log
            extras = {"encoding": p.encoding if p.encoding != "plain" else None,
                      "step": p.step, "length": p.length or None, "math_cond": p.math_cond,
                      "source": p.source, "note": p.note or None}
            row.update({k: v for k, v in extras.items() if v is not None})
            rows.append(row)
        return rows

    # ------------------------------------------------------------ serialize
    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (round-trips through :meth:`from_dict`)."""
        return converter.unstructure(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SearchSpace:
        """Rebuild a space written by :meth:`to_dict`."""
        try:
            space = converter.structure(dict(data), cls)
        except Exception as exc:
            raise SearchSpaceError("cannot read a saved search space", value=str(exc)[:300],
                                   expected="the output of SearchSpace.to_dict()") from exc
        fixed = [attrs.evolve(p, options=tuple(p.options) if p.options is not None else None,
                              weights=tuple(p.weights) if p.weights is not None else None)
                 for p in space.params]
        return attrs.evolve(space, params=fixed)


def _exp_range(p: SearchParam) -> tuple[int, int]:
    return math.ceil(math.log2(p.low) - 1e-9), math.floor(math.log2(p.high) + 1e-9)


def _increasing(vals: list[int], low: int, high: int) -> list[int]:
    """Sort, then make strictly increasing inside ``[low, high]``
    (needs ``high - low + 1 >= len(vals)``, guaranteed at build time)."""
    v = sorted(min(max(x, low), high) for x in vals)
    for i in range(1, len(v)):
        v[i] = max(v[i], v[i - 1] + 1)
    for i in range(len(v) - 1, -1, -1):
        cap = high if i == len(v) - 1 else v[i + 1] - 1
        v[i] = min(v[i], cap)
    return v


def _weighted_sampler(p: SearchParam):
    options, weights = list(p.options), list(p.weights)

    def draw(_spec: Any) -> Any:
        return random.choices(options, weights=weights)[0]

    return draw
