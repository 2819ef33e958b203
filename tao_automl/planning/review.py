"""The pre-launch review: what will run, where, for how long -- launching nothing."""

from __future__ import annotations

from typing import Any

from tao_automl.config.convert import unstructure
from tao_automl.planning.plan import RunPlan
from tao_automl.spec import SpecBuilder, SpecParamContext

__all__ = ["build_review", "estimate"]

DEFAULT_TRIAL_S = 600.0  # assumed per-trial time when nothing is known


def estimate(prepared: RunPlan, per_trial_s: float | None = None) -> dict[str, Any]:
    """Per-trial and total wall time with the assumptions spelled out (finite:
    the settings are bounded; at least one full trial is counted)."""
    s = prepared.settings
    per = per_trial_s or s.estimate_trial_s
    assumptions = []
    if per is None:
        per = DEFAULT_TRIAL_S
        assumptions.append(
            f"no timing data: assumed {per:.0f} s per full trial (set automl_settings['estimate_trial_s'])"
        )
    else:
        assumptions.append(f"{per:g} s per full trial")
    # the registry entry knows what its trials train (brackets, rungs, a population)
    full_trials, spent = prepared.algorithm.estimate(s, prepared.max_epochs)
    assumptions.extend(spent)
    # never less than one full trial: the best trial trains to the end, and
    # more slots than trials do not make a trial shorter
    full_trials = max(1.0, float(full_trials))
    waves = max(1.0, full_trials / max(1, s.max_concurrent))
    evals = int(s.baseline is True) + int(bool(s.final_eval))
    total = per * waves + evals * per * 0.1
    assumptions.append(f"{s.max_concurrent} job(s) at once; evaluations assumed at 10% of a trial")
    if s.baseline == "defaults":
        total += per
        assumptions.append("baseline 'defaults': one full training run before the search")
    return {"per_trial_s": per, "total_s": total, "full_trial_equivalents": full_trials, "assumptions": assumptions}


def build_review(prepared: RunPlan, *, workspace: str, per_trial_s: float | None = None) -> dict[str, Any]:
    """The review dict (stable keys; see the README)."""
    s = prepared.settings
    skill = prepared.skill
    recs = []
    builder = SpecBuilder(skill, prepared.action)
    for i, init in enumerate(prepared.initial_values):
        rec_id = f"rec-{i:03d}"
        overrides = dict(prepared.overrides)
        if prepared.algorithm.multi_fidelity and prepared.fidelity_key and prepared.max_epochs:
            overrides[prepared.fidelity_key] = prepared.max_epochs
        built = builder.build(
            overrides=overrides,
            hyperparameters=init["values"],
            dataset_uris=prepared.dataset_uris,
            context=SpecParamContext(
                action=prepared.action, job_id=rec_id, output_dir=f"{workspace}/trials/<trial_id>/1",
                ptm=prepared.base_checkpoint,
            ),
        )
        recs.append({
            "rec_id": rec_id,
            "overrides": {**init["values"]},
            "adjustments": init["adjustments"],
            "specs": built.spec,
        })
    info = skill.action(prepared.action)
    launch = {
        "model": skill.name,
        "network_arch": getattr(skill.info, "network_arch", None),
        "action": prepared.action,
        "platform": getattr(prepared.backend, "name", type(prepared.backend).__name__),
        "image": prepared.job_options.image or skill.container_image(prepared.action),
        "command": getattr(info, "command", None)
        or (f"python {info.execution.script} {' '.join(info.execution.args or [])}" if getattr(info, "execution", None) else None),
        "gpu_count": prepared.job_options.gpu_count,
        "num_nodes": prepared.job_options.num_nodes,
        "gpu_spec_key": getattr(skill.info, "gpu_spec_key", None),
        "node_spec_key": getattr(skill.info, "node_spec_key", None),
        "workspace": workspace,
        "datasets": dict(prepared.dataset_uris),
        "base_checkpoint": prepared.base_checkpoint,
        "train_sample_count": s.train_sample_count,
    }
    budget = {k: getattr(s, k) for k in prepared.algorithm.settings_used if hasattr(s, k)}
    fixed = prepared.algorithm.fixed_params(s, [p.name for p in prepared.space.params])
    if fixed is not None:  # show what pbt_fixed resolves to: the parameters never changed in a trial's life
        budget["pbt_fixed"] = fixed
    if prepared.algorithm.multi_fidelity:
        budget["max_epochs"] = prepared.max_epochs
        budget["fidelity_key"] = prepared.fidelity_key
    if getattr(prepared.algorithm, "review", None):  # e.g. dehb: brackets and the epochs they spend
        budget.update(prepared.algorithm.review(s, prepared.max_epochs))
    return {
        "model": skill.name,
        "search_space": prepared.space.review_rows(),
        "excluded": dict(prepared.space.excluded),
        "recommendations": recs,
        "algorithm": prepared.algorithm.name,
        "metric": prepared.metric,
        "direction": prepared.direction,
        # multi-objective runs: each objective as the score and the hypervolume use it
        "objectives": [o.to_dict() for o in prepared.objectives],
        "budget": budget,
        "max_concurrent": s.max_concurrent,
        "seed": prepared.seed,
        "launch": launch,
        "estimate": estimate(prepared, per_trial_s),
        "baseline_plan": {
            "enabled": s.baseline,
            # checkpoint: evaluate the starting checkpoint; defaults: one training run
            # with the schema's default values (models trained from scratch)
            "mode": "defaults" if s.baseline == "defaults" else ("checkpoint" if s.baseline else "off"),
            "action": prepared.action if s.baseline == "defaults" else prepared.evaluate_action,
            "checkpoint": prepared.base_checkpoint,
            "record_path": f"{workspace}/evaluations/baseline.json",
        },
        "final_evaluation_plan": {
            "enabled": s.final_eval,
            "action": prepared.evaluate_action,
            "checkpoint": f"best trial checkpoint ({s.checkpoint_selection} epoch)",
            "record_path": f"{workspace}/evaluations/final.json",
            "metric": prepared.metric,
            "datasets": dict(prepared.dataset_uris),
        },
        # each dataset path as the backend sees it where the jobs run
        "path_checks": [unstructure(c) for c in getattr(prepared, "path_checks", ())],
        "blockers": list(prepared.blockers),
        "notes": list(prepared.notes),
    }
