"""Quickstart: a real AutoML search on the embedded local platform (CPU, < 1 minute).

    python examples/quickstart.py [WORKSPACE_DIR]

Tunes the toy numpy MLP skill (examples/toy_skill) with Bayesian optimisation
(Optuna TPE on Ray Tune): 8 trials, 2 at a time, 3 epochs each.  A live table
shows every trial while the search runs; at the end the text report is printed
and the workspace holds result.json, history.csv, best_spec.yaml and
plots/*.png.  The same run from the command line:

    tao-automl run examples/quickstart.yaml
"""

import sys
from pathlib import Path

from tao_automl.reporting.results import format_result
from tao_automl.runner import AutoMLRunner

HERE = Path(__file__).resolve().parent


def main(workspace_dir: str = "automl_workspace") -> dict:
    runner = AutoMLRunner(skill_dir=HERE / "toy_skill", workspace_dir=workspace_dir)
    settings = {
        "max_recommendations": 8,  # trials
        "max_concurrent": 2,       # jobs at once
        "seed": 0,
        "quiet": False,            # show the live progress table on stderr
    }
    overrides = {"train.num_epochs": 3}

    review = runner.review(automl_settings=settings, spec_overrides=overrides)
    print("search space:", ", ".join(p["name"] for p in review["search_space"]))
    print(f"metric: {review['metric']} ({review['direction']}); blockers: {review['blockers'] or 'none'}")

    result = runner.run(automl_algorithm="bayesian", automl_settings=settings, spec_overrides=overrides)
    print(format_result(result))
    ws = Path(result["workspace"])
    print(f"\nbest spec: {ws / 'best_spec.yaml'}")
    print("plots:     " + ", ".join(str(p) for p in sorted((ws / "plots").glob("*.png"))))
    return result


if __name__ == "__main__":
    main(*sys.argv[1:2])
