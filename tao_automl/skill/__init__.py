"""Model skill bundles: ``skill_info.yaml``, spec templates, schemas, manifest."""

from tao_automl.skill.loader import SkillBundle, load_skill
from tao_automl.skill.model import ActionInfo, DataSource, Execution, IOSpec, SkillInfo
from tao_automl.skill.templates import parse_template_text, read_template
from tao_automl.skill.validate import skill_info_json_schema, validate_skill_info

__all__ = [
    "ActionInfo",
    "DataSource",
    "Execution",
    "IOSpec",
    "SkillBundle",
    "SkillInfo",
    "load_skill",
    "parse_template_text",
    "read_template",
    "skill_info_json_schema",
    "validate_skill_info",
]
