"""Hand the best trial to a downstream step (notebook-style; run it as a script too).

    python examples/handoff.py [EXPERIMENT_DIR]

With no argument a short search is run first (like quickstart.py).  The
result dict carries everything a downstream pipeline (e.g. a DEFT-style
evaluate -> export chain) needs: the best hyperparameters, the complete
ready-to-use spec of the best trial, and the exact checkpoint file selected
from it (best epoch by the metric, never a "latest" link).
"""

# %% 1. Get a result dict: from a finished experiment folder, or a fresh run
import json
import subprocess
import sys
from pathlib import Path

from tao_automl.skill import load_skill
from tao_automl.spec import SpecBuilder, SpecParamContext, write_spec

HERE = Path(__file__).resolve().parent
SKILL = HERE / "toy_skill"

if len(sys.argv) > 1:
    result = json.loads((Path(sys.argv[1]) / "result.json").read_text())
else:
    from tao_automl.runner import AutoMLRunner

    runner = AutoMLRunner(skill_dir=SKILL, workspace_dir="automl_workspace")
    result = runner.run(automl_algorithm="bayesian",
                        automl_settings={"max_recommendations": 6, "max_concurrent": 2, "seed": 0},
                        spec_overrides={"train.num_epochs": 3})

best = result["best"]
if best is None:
    raise SystemExit("no trial succeeded: nothing to hand off (see format_result(result))")
print(f"best trial {best['rec_id']}: {result['metric']}={best['metric_value']:.4f}")
print("hyperparameters:", json.dumps(best["hyperparameters"], indent=2))
print("checkpoint:     ", best["checkpoint"])

# %% 2. Downstream evaluate: a spec for the skill's evaluate action, fed with the
#       best checkpoint (spec_params: evaluate.checkpoint <- parent_model) and the
#       same dataset section the best trial trained on.
out_dir = Path(result["workspace"]) / "handoff" / "evaluate"
built = SpecBuilder(load_skill(SKILL), "evaluate").build(
    overrides={"dataset": best["specs"]["dataset"]},
    context=SpecParamContext(action="evaluate", job_id="handoff-eval", output_dir=str(out_dir),
                             parent_checkpoint=best["checkpoint"]),
)
assert not built.missing_data, built.missing_data
spec_path = write_spec(built.spec, str(out_dir / "spec.yaml"), "yaml")
subprocess.run([sys.executable, str(SKILL / "scripts" / "evaluate.py"), "--config", spec_path], check=True)
evaluation = json.loads((out_dir / "results.json").read_text())
print("downstream evaluation:", evaluation)

# %% 3. "Export": package what a deployment step needs -- the checkpoint, the exact
#       training spec (best_spec.yaml is the same spec) and a manifest.
package = Path(result["workspace"]) / "handoff" / "package"
package.mkdir(parents=True, exist_ok=True)
(package / "model.pth").write_bytes(Path(best["checkpoint"]).read_bytes())
write_spec(best["specs"], str(package / "train_spec.yaml"), "yaml")
manifest = {
    "session_id": result["session_id"], "trial": best["rec_id"], "job_id": best["job_id"],
    "metric": result["metric"], "direction": result["direction"],
    "search_metric_value": best["metric_value"],
    "final_evaluation": result["final_evaluation"].get("metric_value"),
    "downstream_evaluation": evaluation,
    "hyperparameters": best["hyperparameters"], "source_checkpoint": best["checkpoint"],
}
(package / "manifest.json").write_text(json.dumps(manifest, indent=2))
print(f"packaged for deployment: {package}")
