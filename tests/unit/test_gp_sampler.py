"""The numpy GP sampler behind the 'bayesian' algorithm."""

from __future__ import annotations

import pickle
import warnings

import pytest

optuna = pytest.importorskip("optuna")

from tao_automl.algorithms._gp_sampler import GPSampler  # noqa: E402

warnings.filterwarnings("ignore")
optuna.logging.set_verbosity(optuna.logging.WARNING)


def _branin(u1: float, u2: float) -> float:
    import math

    x1, x2 = 15 * u1 - 5, 15 * u2
    b, c, t = 5.1 / (4 * math.pi**2), 5 / math.pi, 1 / (8 * math.pi)
    return (x2 - b * x1**2 + c * x1 - 6) ** 2 + 10 * (1 - t) * math.cos(x1) + 10


def test_gp_finds_branin_optimum_in_20_trials_and_beats_random() -> None:
    gp_best, rnd_best = [], []
    for seed in range(3):
        for sampler, sink in ((GPSampler(seed=seed, n_startup_trials=4), gp_best),
                              (optuna.samplers.RandomSampler(seed=seed), rnd_best)):
            study = optuna.create_study(sampler=sampler)
            study.optimize(lambda t: _branin(t.suggest_float("a", 0, 1), t.suggest_float("b", 0, 1)), n_trials=20)
            sink.append(study.best_value)
    assert sorted(gp_best)[1] < 1.0  # optimum 0.398
    assert sorted(gp_best)[1] < sorted(rnd_best)[1]


def test_mixed_space_int_log_categorical_and_maximize() -> None:
    study = optuna.create_study(sampler=GPSampler(seed=0, n_startup_trials=3), direction="maximize")

    def objective(t: optuna.Trial) -> float:
        lr = t.suggest_float("lr", 1e-5, 1e-1, log=True)
        bs = t.suggest_int("bs", 8, 256, step=8)
        act = t.suggest_categorical("act", ["relu", "tanh"])
        assert 1e-5 <= lr <= 1e-1 and bs % 8 == 0 and 8 <= bs <= 256 and act in ("relu", "tanh")
        import math

        return -((math.log10(lr) + 3) ** 2) - ((bs - 64) / 64) ** 2 + (0.5 if act == "tanh" else 0.0)

    study.optimize(objective, n_trials=15)
    best = study.best_params
    assert 1e-4 <= best["lr"] <= 1e-2  # the model moved toward the maximum at 1e-3
    assert best["bs"] % 8 == 0


def test_sampler_pickles_and_keeps_working() -> None:
    s = GPSampler(seed=1, n_startup_trials=2, constant_liar=True)
    study = optuna.create_study(sampler=s)
    study.optimize(lambda t: (t.suggest_float("x", -1, 1) - 0.2) ** 2, n_trials=6)
    s2 = pickle.loads(pickle.dumps(s))
    study2 = optuna.create_study(sampler=s2)
    for tr in study.trials:
        study2.add_trial(tr)
    study2.optimize(lambda t: (t.suggest_float("x", -1, 1) - 0.2) ** 2, n_trials=4)
    assert study2.best_value < 0.05


def test_log_expected_improvement_is_accurate_and_never_underflows() -> None:
    import math

    import numpy as np

    from tao_automl.algorithms._gp_sampler import _log_h

    def direct(u: float) -> float:
        return u * 0.5 * (1 + math.erf(u / math.sqrt(2))) + math.exp(-u * u / 2) / math.sqrt(2 * math.pi)

    u = np.array([-4.9, -3.0, -1.0, 0.0, 1.0, 3.0])
    assert np.allclose(_log_h(u), [math.log(direct(v)) for v in u], rtol=1e-9)
    # Across the switch to the asymptotic branch (u = -10) the two sides agree...
    assert abs(_log_h(np.array([-10.0001]))[0] - _log_h(np.array([-9.9999]))[0]) < 1e-2
    assert abs(_log_h(np.array([-9.9999]))[0] - (-0.5 * 100 - 0.5 * math.log(2 * math.pi) - 2 * math.log(10))) < 0.05
    # ...and far out, where direct EI is exactly 0.0, the log still ranks points.
    far = _log_h(np.array([-40.0, -60.0, -200.0]))
    assert direct(-40.0) == 0.0
    assert np.all(np.isfinite(far)) and far[0] > far[1] > far[2]
