"""Test helpers shared by the integration tests (imported as ``skillkit``;
a plain module, not ``conftest``, so its name cannot collide with the
``conftest`` of a sub-folder)."""

from __future__ import annotations

import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TOY = REPO / "examples" / "toy_skill"


def make_skill(root: Path, train_body: str, *, eval_body: str | None = None, metric: str = "val_loss",
               credentials: tuple[str, ...] = ()) -> Path:
    """A tiny custom skill in ``root`` whose train script is ``train_body``
    (Python; gets ``spec`` (dict), ``results_dir`` and ``emit(**values)``)."""
    (root / "references").mkdir(parents=True, exist_ok=True)
    (root / "schemas").mkdir(exist_ok=True)
    (root / "scripts").mkdir(exist_ok=True)
    import yaml

    def execution(script: str) -> dict:
        return {"type": "python_script", "script": f"scripts/{script}", "args": ["--config", "{config_path}"]}

    evaluate = eval_body is not None
    actions = {"train": {"config_format": "yaml", "execution": execution("train.py"), "metric": metric,
                         "metric_direction": "minimize"}}
    templates = {"train": "../references/spec_template_train.yaml"}
    if evaluate:
        actions["evaluate"] = {"config_format": "yaml", "execution": execution("evaluate.py"), "metric": metric}
        templates["evaluate"] = "../references/spec_template_train.yaml"
    info = {
        "name": f"tiny-{root.name}", "network_arch": "tiny", "automl_enabled": True,
        "metric": metric, "metric_direction": "minimize", "actions": actions,
        "spec_params": {"train": {"results_dir": "output_dir"}},
        "spec_shorthand_keys": {"num_epochs": "train.num_epochs"},
        "spec_templates": templates,
        "required_credentials": list(credentials),
    }
    (root / "references" / "skill_info.yaml").write_text(yaml.safe_dump(info, sort_keys=False))
    (root / "references" / "spec_template_train.yaml").write_text(
        "results_dir: ./out\ntrain:\n  num_epochs: 2\n  lr: 0.1\n  mode: ok\n")
    schema = {
        "type": "object",
        "properties": {
            "results_dir": {"type": "string"},
            "train": {"type": "object", "properties": {
                "num_epochs": {"type": "integer", "default": 2, "minimum": 1, "maximum": 10},
                "lr": {"type": "number", "default": 0.1, "minimum": 0.001, "maximum": 1.0,
                       "automl_enabled": True},
                "mode": {"type": "string", "default": "ok"},
            }},
        },
        "automl_default_parameters": ["train.lr"],
    }
    import json

    (root / "schemas" / "train.schema.json").write_text(json.dumps(schema))
    if evaluate:
        (root / "schemas" / "evaluate.schema.json").write_text(json.dumps(schema))
    header = textwrap.dedent("""\
        import json, os, sys, time
        import yaml
        spec = yaml.safe_load(open(sys.argv[sys.argv.index("--config") + 1]))
        results_dir = spec.get("results_dir") or "."
        os.makedirs(results_dir, exist_ok=True)
        def emit(**values):
            print("[tao-automl-metric] " + json.dumps(values), flush=True)
        """)
    (root / "scripts" / "train.py").write_text(header + textwrap.dedent(train_body))
    if evaluate:
        (root / "scripts" / "evaluate.py").write_text(header + textwrap.dedent(eval_body))
    return root
