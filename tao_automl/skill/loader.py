"""Load a model skill directory into a :class:`SkillBundle`.

Layout::

    <skill>/references/skill_info.yaml
    <skill>/references/spec_template_<action>.yaml   (or the spec_templates entry)
    <skill>/schemas/<action>.schema.json
    <skill>/schemas/manifest.json                     (optional)
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import attrs
import yaml

from tao_automl.config import safe_yaml
from tao_automl.errors import SchemaGateError, SkillError
from tao_automl.schema import TaoSchema, load_schema
from tao_automl.skill._convert import structure
from tao_automl.skill.model import ActionInfo, SkillInfo
from tao_automl.skill.templates import read_template
from tao_automl.skill.validate import validate_skill_info
from tao_automl.skill.versions import annotated_keys, find_versions_file, is_bare_key, lookup_key

__all__ = ["SkillBundle", "load_skill", "confined"]

_TEMPLATE_EXTS = (".yaml", ".yml", ".json", ".toml")


def confined(root: Path, path: Path, *, file: Path, key: str, value: object = None) -> Path:
    """``path`` resolved (symlinks followed); SkillError naming ``file`` and
    ``key`` when it lies outside the skill folder ``root``: a skill may only
    name files inside itself (no absolute paths elsewhere, ``../``, or
    symlinks leading out).  ``value`` is the path as the skill wrote it."""
    shown = str(path) if value is None else value
    resolved = Path(path).resolve()
    base = Path(root).resolve()
    if resolved != base and not resolved.is_relative_to(base):
        raise SkillError("path leaves the skill folder", file=file, key=key, value=shown,
                         expected=f"a file inside the skill folder {base} (no '..', absolute path "
                                  "elsewhere or symlink leading out)", hint=f"it resolves to {resolved}")
    return resolved


@attrs.frozen
class SkillBundle:
    """A loaded model skill: metadata, templates, schemas and manifest."""

    root: Path
    info: SkillInfo
    info_path: Path
    versions_file: Path | None = None
    _cache: dict = attrs.field(factory=dict, eq=False, repr=False, alias="_cache")

    @property
    def name(self) -> str:
        """The skill's name (``name`` key or the directory name)."""
        return self.info.name

    def has_action(self, name: str) -> bool:
        """Whether the skill declares action ``name``."""
        return name in self.info.actions

    def action(self, name: str) -> ActionInfo:
        """The :class:`ActionInfo` for ``name`` (SkillError when absent)."""
        try:
            return self.info.actions[name]
        except KeyError:
            raise SkillError("action not declared", file=self.info_path, key=f"actions.{name}",
                             expected=f"one of {sorted(self.info.actions)}") from None

    def template_path(self, action: str) -> Path:
        """Where the spec template for ``action`` lives.

        A ``spec_templates`` entry is tried relative to ``references/`` and
        then to the skill root; without an entry the convention
        ``references/spec_template_<action>.{yaml,yml,json,toml}`` applies.
        When nothing exists the first candidate is returned (reading it then
        raises SchemaGateError naming it).
        """
        refs = self.root / "references"
        entry = self.info.spec_templates.get(action)
        if entry:
            cands = [Path(entry)] if Path(entry).is_absolute() else [refs / entry, self.root / entry]
        else:
            cands = [refs / f"spec_template_{action}{ext}" for ext in _TEMPLATE_EXTS]
        key = f"spec_templates.{action}" if entry else f"references/spec_template_{action}"
        for c in cands:
            if c.is_file():
                return confined(self.root, c, file=self.info_path, key=key, value=entry)
        return confined(self.root, cands[0], file=self.info_path, key=key, value=entry) if entry else cands[0]

    def template(self, action: str) -> dict:
        """A fresh deep copy of the parsed spec template for ``action``."""
        key = ("template", action)
        if key not in self._cache:
            self._cache[key] = read_template(self.template_path(action))
        return copy.deepcopy(self._cache[key])

    def schema_path(self, action: str) -> Path:
        """``schemas/<action>.schema.json`` or the manifest's ``actions.<a>.path``."""
        default = self.root / "schemas" / f"{action}.schema.json"
        if default.is_file():
            confined(self.root, default, file=default, key=f"schemas/{action}.schema.json")
            return default
        entry = ((self.manifest or {}).get("actions") or {}).get(action) or {}
        if isinstance(entry, dict) and isinstance(entry.get("path"), str):
            cand = self.root / entry["path"]
            confined(self.root, cand, file=self.root / "schemas" / "manifest.json",
                     key=f"actions.{action}.path", value=entry["path"])
            if cand.is_file():
                return cand
        return default

    def schema(self, action: str) -> TaoSchema:
        """The parsed schema for ``action`` (SchemaGateError when missing/unparsable)."""
        key = ("schema", action)
        if key not in self._cache:
            path = self.schema_path(action)
            if not path.is_file():
                raise SchemaGateError(f"schema for action '{action}' is missing", file=path,
                                      expected=f"schemas/{action}.schema.json in skill '{self.name}'")
            self._cache[key] = load_schema(path)
        return self._cache[key]

    @property
    def manifest(self) -> dict | None:
        """Parsed ``schemas/manifest.json`` or ``None`` when absent."""
        if "manifest" not in self._cache:
            path = self.root / "schemas" / "manifest.json"
            data = None
            if path.is_file():
                confined(self.root, path, file=path, key="schemas/manifest.json")
                try:
                    data = json.loads(path.read_text(encoding="utf-8"),
                                      parse_constant=lambda c: float(c.replace("Infinity", "inf")))
                except (ValueError, RecursionError) as exc:
                    raise SkillError("manifest does not parse", file=path, value=str(exc), expected="JSON") from exc
            self._cache["manifest"] = data
        return self._cache["manifest"]

    def container_image(self, action: str | None = None) -> str | None:
        """The image to run ``action`` in.

        Order: the action's own ``container_image``; the skill-level one; then
        the default backend of ``backend_selection.defaults.<action>`` looked
        up in ``backend_contracts.<backend>.container_image`` (both kept in
        ``extra``).  A bare versions key that could not be resolved raises
        SkillError.
        """
        act = self.info.actions.get(action) if action else None
        for img, key, where in (
            (act.container_image if act else None, act.container_image_key if act else None,
             f"actions.{action}.container_image"),
            (self.info.container_image, self.info.container_image_key, "container_image"),
        ):
            if img:
                return img
            if key:
                raise SkillError("container image is a versions key that could not be resolved",
                                 file=self.info_path, key=where, value=key,
                                 expected="a versions.yaml (pass versions_file=) that defines it")
        backend = ((self.info.extra.get("backend_selection") or {}).get("defaults") or {}).get(
            action or "train")
        contract = (self.info.extra.get("backend_contracts") or {}).get(backend) or {}
        img = contract.get("container_image") if isinstance(contract, dict) else None
        return img if isinstance(img, str) else None


def load_skill(skill_dir: str | Path, *, versions_file: str | Path | None = None) -> SkillBundle:
    """Load the model skill in ``skill_dir``.

    Raises SkillError when ``references/skill_info.yaml`` is missing, does not
    parse, or fails the packaged JSON Schema (message names file, key, value
    and the expectation).  Image keys: a ``# versions-key:`` comment becomes
    ``container_image_key``; a bare key (``tao_toolkit.pyt``) is resolved
    through ``versions_file`` or the first ``versions.yaml`` found walking up
    from the skill directory.
    """
    root = Path(skill_dir).expanduser().resolve()
    info_path = root / "references" / "skill_info.yaml"
    if not info_path.is_file():
        raise SkillError("not a model skill: skill_info.yaml is missing", file=info_path,
                         expected="<skill>/references/skill_info.yaml")
    try:
        text = safe_yaml.decode_utf8(info_path.read_bytes())
        raw = safe_yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise SkillError("skill_info.yaml does not parse", file=info_path, value=str(exc), expected="YAML") from exc
    if not isinstance(raw, dict):
        raise SkillError("skill_info.yaml is not a mapping", file=info_path, value=type(raw).__name__,
                         expected="a YAML mapping")
    validate_skill_info(raw, file=info_path)
    data = dict(raw)
    data.setdefault("name", root.name)
    for k in ("data_sources", "spec_params", "key_defaults", "spec_shorthand_keys",
              "spec_templates", "required_credentials", "conditional_credentials"):
        if data.get(k) is None:
            data.pop(k, None)
    data["data_sources"] = {a: v or {} for a, v in (data.get("data_sources") or {}).items()}
    data["spec_params"] = {a: v or {} for a, v in (data.get("spec_params") or {}).items()}
    data["actions"] = {n: {**(a or {}), "name": n} for n, a in data["actions"].items()}

    annotated = annotated_keys(text)
    vfile_holder: list[Path | None] = []

    def vfile() -> Path | None:
        if not vfile_holder:
            vfile_holder.append(find_versions_file(root, versions_file))
        return vfile_holder[0]

    def resolve_image(node: dict, where: str) -> None:
        img = node.get("container_image")
        if not isinstance(img, str) or not img:
            return
        if img in annotated:
            node["container_image_key"] = annotated[img]
        elif is_bare_key(img):
            vf = vfile()
            found = lookup_key(vf, img) if vf else None
            if vf is not None and found is None:
                raise SkillError("versions key not found", file=vf, key=img,
                                 expected=f"a key used by {info_path}:{where}")
            node["container_image_key"] = found[0] if found else img
            node["container_image"] = found[1] if found else None

    resolve_image(data, "container_image")
    for n, a in data["actions"].items():
        resolve_image(a, f"actions.{n}.container_image")
    if versions_file is not None:
        vfile()
    info = structure(data, SkillInfo, file=info_path)
    bundle = SkillBundle(root=root, info=info, info_path=info_path,
                         versions_file=vfile_holder[0] if vfile_holder else None)
    _check_paths(bundle)
    return bundle


def _check_paths(bundle: SkillBundle) -> None:
    """Every file path skill_info.yaml names stays inside the skill folder."""
    for action in bundle.info.spec_templates:
        bundle.template_path(action)
    for name, act in bundle.info.actions.items():
        ex = act.execution
        if ex is None:
            continue
        for attr in ("script", "cwd"):
            value = getattr(ex, attr)
            if value:
                confined(bundle.root, bundle.root / str(value), file=bundle.info_path,
                         key=f"actions.{name}.execution.{attr}", value=value)
