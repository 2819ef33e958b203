"""Shared helpers for the skill/schema/search tests (no conftest on purpose; no tests here)."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
PACKAGED = REPO / "skills"
# The skill bank's model skills are the packaged copies (byte-identical, see
# test_packaged_skills.py); files of the bank that are not packaged live
# under tests/fixtures/tao-skill-bank. Tests read nothing outside the repository.
BANK_MODELS = PACKAGED
BANK_VERSIONS = REPO / "tests" / "fixtures" / "tao-skill-bank" / "versions.yaml"


def skill_dirs(root: Path) -> list[Path]:
    """Skill directories under ``root`` that have a skill_info.yaml."""
    return sorted(p.parents[1] for p in root.glob("*/references/skill_info.yaml"))


def all_skill_dirs() -> list[Path]:
    """The packaged skills (the skill bank's seed models)."""
    return skill_dirs(PACKAGED)


def skill_id(p: Path) -> str:
    return f"{p.parent.name}/{p.name}"


def write_synthetic_skill(root: Path, *, versions: bool = False) -> Path:
    """A non-seed skill: standard JSON Schema dialect with automl_enabled,
    JSON template via spec_templates relative to the skill root."""
    skill = root / "my-toy-regressor"
    (skill / "references").mkdir(parents=True)
    (skill / "schemas").mkdir()
    (skill / "templates").mkdir()
    info = {
        "network_arch": "toy_regressor",
        "automl_enabled": True,
        "container_image": "toolkit.cpu" if versions else "python:3.11-slim",
        "gpu_spec_key": "trainer.gpus",
        "metric": "val_rmse",
        "metric_direction": "minimize",
        "actions": {
            "train": {
                "config_format": "json",
                "execution": {"type": "python_script", "script": "train.py",
                              "args": ["--config", "{config_path}"], "cwd": "."},
                "inputs": {"data.train_csv": {"type": "file"}},
                "outputs": {"results_dir": {"type": "folder"}},
                "metric_file": "metrics.json",
                "brand_new_action_key": {"x": 1},
            }
        },
        "spec_templates": {"train": "templates/train.json"},
        "data_sources": {"train": {"data.train_csv": {"source": "train_datasets",
                                                      "path": "train.csv", "shard_hint": 3}}},
        "spec_shorthand_keys": {"learning_rate": "optim.lr"},
        "automl_constraints": [
            {"kind": "multiple_of", "param": "data.batch_size", "other": "data.group"},
        ],
        "totally_unknown_top_key": [1, 2, 3],
    }
    (skill / "references" / "skill_info.yaml").write_text(yaml.safe_dump(info, sort_keys=False))
    template = {"optim": {"lr": 0.01, "momentum": 0.9, "scheduler": "cosine", "warm": 1},
                "data": {"batch_size": 32, "group": 4, "train_csv": ""},
                "trainer": {"epochs": 20, "gpus": 1, "tag": "x"}, "results_dir": ""}
    (skill / "templates" / "train.json").write_text(json.dumps(template))
    schema = {
        "type": "object",
        "properties": {
            "optim": {"type": "object", "properties": {
                "lr": {"type": "number", "default": 0.01, "minimum": 0, "automl_enabled": True},
                "momentum": {"type": "number", "default": 0.9, "minimum": 0, "maximum": 1,
                             "automl_enabled": True},
                "scheduler": {"type": "string", "enum": ["cosine", "step", "none"],
                              "default": "cosine", "automl_enabled": True},
                "warm": {"type": "integer", "default": 1, "minimum": 0, "maximum": 5},
            }},
            "data": {"type": "object", "properties": {
                "batch_size": {"type": "integer", "default": 32, "minimum": 1, "maximum": 256,
                               "automl_enabled": True},
                "group": {"type": "integer", "default": 4, "minimum": 1, "maximum": 8},
                "train_csv": {"type": "string", "default": ""},
            }},
            "trainer": {"type": "object", "automl_enabled": False, "properties": {
                "epochs": {"type": "integer", "default": 20, "minimum": 1, "maximum": 100},
                "gpus": {"type": "integer", "default": 1},
                "tag": {"type": "string", "default": "x", "automl_enabled": True},
            }},
            "results_dir": {"type": "string", "default": ""},
        },
    }
    (skill / "schemas" / "train.schema.json").write_text(json.dumps(schema))
    if versions:
        (root / "versions.yaml").write_text("images:\n  toolkit:\n    cpu: example.org/toy:1.0\n")
    return skill
