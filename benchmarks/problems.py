"""The benchmark problems and budgets: what each search run is asked to do."""

from __future__ import annotations

from typing import Any

import attrs

from benchmarks.common import objectives_module

SEQUENTIAL_TRIALS = 20  # full-fidelity trials for sequential searchers
MF_EPOCHS = 9  # R: the top fidelity (train.num_epochs) of the multi-fidelity form
MF_ETA = 3
MF_EPOCH_SLEEP_S = 0.1  # seconds per epoch, so a stop decision lands before the job ends
MF_BUDGET_EPOCHS = SEQUENTIAL_TRIALS * MF_EPOCHS  # equal to 20 full trials


@attrs.frozen
class Problem:
    """One objective form: function x variant ('plain', 'noisy', 'mf')."""

    function: str
    variant: str

    @property
    def name(self) -> str:
        return f"{self.function}-{self.variant}"

    @property
    def dims(self) -> int:
        return objectives_module().DIMS[self.function]

    @property
    def optimum(self) -> float:
        return objectives_module().OPTIMA[self.function]

    @property
    def multi_fidelity(self) -> bool:
        return self.variant == "mf"

    @property
    def hyperparameters(self) -> list[str]:
        return [f"params.x{i + 1}" for i in range(self.dims)]

    @property
    def noise_std(self) -> float:
        return objectives_module().DEFAULTS[self.function]["noise"] if self.variant == "noisy" else 0.0

    @property
    def budget_epochs(self) -> int:
        return MF_BUDGET_EPOCHS if self.multi_fidelity else SEQUENTIAL_TRIALS

    @property
    def full_epoch(self) -> int:
        return MF_EPOCHS if self.multi_fidelity else 1

    def spec_overrides(self, seed: int) -> dict[str, Any]:
        """Dotted overrides of the objective skill's train spec."""
        o: dict[str, Any] = {
            "objective.function": self.function,
            "objective.noise_std": self.noise_std,
            "objective.seed": int(seed),
        }
        if self.multi_fidelity:
            o.update({"objective.fidelity_epochs": MF_EPOCHS, "train.num_epochs": MF_EPOCHS,
                      "train.epoch_sleep_s": MF_EPOCH_SLEEP_S})
        return o


def observe_fn(problem: Problem, seed: int):
    """(u, epoch) -> observed value, exactly as the job computes it."""
    obj = objectives_module()
    fid = MF_EPOCHS if problem.multi_fidelity else 0

    def f(u: list[float], epoch: int) -> float:
        return obj.observe(problem.function, u, epoch, fidelity_epochs=fid, noise_std=problem.noise_std,
                           seed=seed)

    return f
