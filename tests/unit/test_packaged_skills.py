"""The packaged skills under skills/: complete, unchanged from the bank, documented."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
SKILLS = REPO / "skills"
# SHA-256 of the skill bank's skills/models/<name>/ files, recorded when they
# were copied here (tests read nothing outside the repository).
BANK_SUMS = REPO / "tests" / "fixtures" / "tao-skill-bank" / "models.sha256"
NAMES = ["tao-train-mask-auto-label", "tao-train-action-recognition", "tao-train-reid",
         "tao-finetune-cosmos-reason"]
OURS = {"SKILL.md", "references/automl.yaml"}


def _files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


@pytest.mark.parametrize("name", NAMES)
def test_skill_directory_is_complete(name):
    root = SKILLS / name
    for rel in ("SKILL.md", "references/skill_info.yaml", "references/automl.yaml",
                "references/spec_template_train.yaml", "schemas/train.schema.json"):
        assert (root / rel).is_file(), rel
    assert not (root / "scripts").exists()  # the bank ships none; never invent them


def _bank_sums(name: str) -> dict[str, str]:
    sums = {}
    for line in BANK_SUMS.read_text().splitlines():
        digest, rel = line.split(maxsplit=1)
        skill, _, rest = rel.partition("/")
        if skill == name:
            sums[rest] = digest
    return sums


@pytest.mark.parametrize("name", NAMES)
def test_bank_files_are_byte_identical(name):
    ours, bank = SKILLS / name, _bank_sums(name)
    assert bank, f"{name} missing from {BANK_SUMS}"
    assert _files(ours) - OURS == set(bank)
    for rel, digest in bank.items():
        assert hashlib.sha256((ours / rel).read_bytes()).hexdigest() == digest, rel


@pytest.mark.parametrize("name", NAMES)
def test_loader_loads_each_packaged_skill(name):
    skill_mod = pytest.importorskip("tao_automl.skill")
    bundle = skill_mod.load_skill(SKILLS / name)
    assert bundle.name == name
    assert bundle.info.automl_enabled is True
    assert bundle.has_action("train")
    assert isinstance(bundle.template("train"), dict) and bundle.template("train")
    schema = json.loads((SKILLS / name / "schemas/train.schema.json").read_text()
                        .replace("-Infinity", "-1e999").replace("Infinity", "1e999"))
    assert "properties" in schema


SIDE_KEYS = {"format_version", "action", "metric", "metric_direction", "metric_source",
             "suggested_hyperparameters", "custom_param_ranges", "recommended_overrides",
             "constraints", "notes"}
EXPECTED_METRIC = {
    "tao-train-reid": ("cmc_rank_1", "maximize"),
    "tao-train-action-recognition": ("val_loss", "minimize"),
    "tao-train-mask-auto-label": (None, None),
    "tao-finetune-cosmos-reason": (None, None),
}


@pytest.mark.parametrize("name", NAMES)
def test_automl_sidecar_format(name):
    side = yaml.safe_load((SKILLS / name / "references/automl.yaml").read_text())
    assert set(side) == SIDE_KEYS
    assert side["format_version"] == 1 and side["action"] == "train"
    assert (side["metric"], side["metric_direction"]) == EXPECTED_METRIC[name]
    from tao_automl.search import coerce_constraints

    for c in side["constraints"]:
        assert c["type"] in {"multiple_of", "mutually_exclusive"}
        if c["type"] == "multiple_of":
            assert {"param", "of"} <= set(c)
        else:
            assert len(c["params"]) == 2
    # the search space builder understands every sidecar constraint
    assert len(coerce_constraints(side["constraints"])) == len(side["constraints"])
    assert all(isinstance(n, str) for n in side["notes"])
    # every parameter the sidecar names exists in the train schema
    schema_text = (SKILLS / name / "schemas/train.schema.json").read_text()
    named = list(side["suggested_hyperparameters"]) + list(side["custom_param_ranges"])
    for c in side["constraints"]:
        named += [c.get("param"), c.get("of"), *c.get("params", [])]
    for dotted in filter(None, named):
        assert f'"{dotted.rsplit(".", 1)[-1]}"' in schema_text, dotted


def test_sidecar_constraints_match_seed_cards():
    reid = yaml.safe_load((SKILLS / "tao-train-reid/references/automl.yaml").read_text())
    assert {"type": "multiple_of", "param": "dataset.batch_size",
            "of": "dataset.num_instances"}.items() <= reid["constraints"][0].items()
    cosmos = yaml.safe_load(
        (SKILLS / "tao-finetune-cosmos-reason/references/automl.yaml").read_text())
    kinds = {(c["type"], c.get("param"), c.get("of"), tuple(c.get("params", ())))
             for c in cosmos["constraints"]}
    assert ("multiple_of", "train.train_batch_per_replica", "train.train_policy.mini_batch",
            ()) in kinds
    assert ("mutually_exclusive", None, None,
            ("custom.vision.fps", "custom.vision.nframes")) in kinds
    mal = yaml.safe_load((SKILLS / "tao-train-mask-auto-label/references/automl.yaml").read_text())
    assert mal["suggested_hyperparameters"] == ["train.lr", "train.wd"]


@pytest.mark.parametrize("name", NAMES)
def test_skill_md_covers_required_sections(name):
    text = (SKILLS / name / "SKILL.md").read_text()
    front = re.match(r"---\n(.*?)\n---\n", text, re.S)
    assert front, "SKILL.md needs YAML front matter"
    meta = yaml.safe_load(front.group(1))
    assert meta["name"] == name and meta["description"]
    for heading in ("## AutoML metric and direction", "## Default search parameters",
                    "## Constraints", "## Mandatory data overrides", "## Checkpoint handoff",
                    "## Known failures"):
        assert heading in text, heading
    info = yaml.safe_load((SKILLS / name / "references/skill_info.yaml").read_text())
    schema = json.loads((SKILLS / name / "schemas/train.schema.json").read_text()
                        .replace("-Infinity", "-1e999").replace("Infinity", "1e999"))
    for param in schema.get("automl_default_parameters", []):
        assert f"`{param}`" in text, f"default search parameter {param} not documented"
    for key in (info.get("data_sources") or {}).get("train", {}):
        assert f"`{key}`" in text, f"train data key {key} not documented"


def test_readme_has_license_pointer():
    readme = (SKILLS / "README.md").read_text()
    assert "Apache License 2.0" in readme and "LICENSE.tao-skill-bank" in readme
    lic = (SKILLS / "LICENSE.tao-skill-bank").read_text()
    assert "Apache License" in lic and "Version 2.0" in lic
    for name in NAMES:
        assert name in readme
