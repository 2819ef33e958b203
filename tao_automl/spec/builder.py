"""Build the launchable spec of one action of a model skill.

Layers, lowest to highest precedence::

    template < key_defaults < data sources < spec_params < outputs < user overrides < hyperparameters

The template (``references/spec_template_<action>.*``) is the launchable
base; the schema supplies metadata only and is not read here.  Data sources
and spec_params skip keys the user (or the search) set explicitly, so an
exact user-given key always wins without the lower layer being evaluated.
The ``outputs`` layer routes every output the action declares (``outputs:``
in skill_info.yaml, folder or file) into the job's own folder
(``context.output_dir``), see :mod:`tao_automl.spec.outputs`.

For a TOML action (TOML has no null) a ``None`` that comes straight from the
template means "unset": it is dropped and a note records it.  A ``None`` put
there by any layer would be silently lost, so it raises SpecError.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from tao_automl.config.secrets import replace_secrets
from tao_automl.errors import SpecError, describe
from tao_automl.spec.data_sources import DataResolution, resolve_data_sources
from tao_automl.spec.outputs import ROUTED_TYPES, declared_outputs, route_outputs
from tao_automl.spec.overrides import apply_canonical, canonicalize
from tao_automl.spec.paths import Path, format_path, get_path, parse_path
from tao_automl.spec.spec_params import (
    SpecParamContext,
    SpecParamResolution,
    resolve_spec_params_full,
)
from tao_automl.spec.templates import drop_none_leaves, none_leaves, write_spec

__all__ = ["BuiltSpec", "SpecBuilder"]

LAYERS = ("key_defaults", "data_sources", "spec_params", "outputs", "overrides", "hyperparameters")


@attrs.frozen
class BuiltSpec:
    """A built spec and the evidence of how it was built.

    ``applied``: ``{dotted key: value}`` set by any layer (the final value);
    ``origins``: ``{dotted key: layer}`` naming the layer that set it last;
    ``missing_data``: mandatory keys (data sources, parent checkpoints,
    output dirs) that could not be filled; ``archives``: data keys whose value
    is an archive the platform must extract (``runtime: extracted_folder``);
    ``notes``: human-readable decisions, in order; ``outputs``: ``{dotted
    key: value}`` of every declared folder/file output in the final spec.
    """

    spec: dict[str, Any]
    config_format: str
    missing_data: list[str] = attrs.field(factory=list)
    applied: dict[str, Any] = attrs.field(factory=dict)
    origins: dict[str, str] = attrs.field(factory=dict)
    archives: dict[str, Any] = attrs.field(factory=dict)
    notes: list[str] = attrs.field(factory=list)
    outputs: dict[str, Any] = attrs.field(factory=dict)


def _key_defaults_for(raw: Mapping[str, Any] | None, action: str,
                      actions: Mapping[str, Any]) -> dict[str, Any]:
    """``key_defaults`` is ``{dotted: value}``; an entry named after an action
    whose value is a mapping holds that action's own defaults."""
    out: dict[str, Any] = {}
    for k, v in (raw or {}).items():
        if k in actions and isinstance(v, Mapping):
            if k == action:
                out.update(v)
        else:
            out[k] = v
    return out


class SpecBuilder:
    """Builds specs for ``action`` of a loaded skill (``SkillBundle``).

    Only these members of the bundle are used: ``template(action)``,
    ``action(action).config_format``, and ``info.{data_sources, spec_params,
    key_defaults, spec_shorthand_keys, data_format, actions}``.
    """

    def __init__(self, skill: Any, action: str) -> None:
        self.skill = skill
        self.action = action
        self.action_info = skill.action(action)  # SkillError when the action is absent
        self.config_format = str(getattr(self.action_info, "config_format", None) or "yaml").lower()

    def build(
        self,
        *,
        overrides: Mapping[str, Any] | None = None,
        hyperparameters: Mapping[str, Any] | None = None,
        dataset_uris: Mapping[str, str | list[str]] | None = None,
        context: SpecParamContext | None = None,
        placeholders: Mapping[str, Any] | None = None,
        strict: bool = False,
    ) -> BuiltSpec:
        """Build the spec; ``strict=True`` raises SpecError on missing mandatory keys."""
        info = self.skill.info
        action = self.action
        shorthand = dict(getattr(info, "spec_shorthand_keys", None) or {})
        spec = self.skill.template(action)
        if overrides:
            overrides = replace_secrets(overrides)  # secret("NAME") -> ${oc.env:NAME}, never the value
        template_nones = set(none_leaves(spec))
        notes: list[str] = []
        applied: dict[Path, Any] = {}
        origins: dict[Path, str] = {}

        def put(layer: str, values: Mapping[Path, Any]) -> None:
            apply_canonical(spec, values)
            for p, v in values.items():
                applied[p] = v
                origins[p] = layer

        kd = canonicalize(_key_defaults_for(getattr(info, "key_defaults", None), action,
                                            getattr(info, "actions", {}) or {}),
                          shorthand=shorthand, spec=spec, what="key default")
        put("key_defaults", kd.values)

        user = canonicalize(overrides, shorthand=shorthand, spec=spec)
        hps = canonicalize(hyperparameters, shorthand=shorthand, spec=spec, what="hyperparameter")
        notes.extend(user.notes + hps.notes)
        explicit = {format_path(p) for p in list(user.values) + list(hps.values)}

        data = resolve_data_sources(
            (getattr(info, "data_sources", None) or {}).get(action, {}),
            dataset_uris,
            data_format=getattr(info, "data_format", None),
            user_keys=explicit,
            placeholders=placeholders,
        )
        notes.extend(data.notes)
        put("data_sources", {parse_path(k): v for k, v in data.values.items()})

        params = self._spec_params(context, explicit, notes)
        put("spec_params", {parse_path(k): v for k, v in params.values.items()})

        routing = route_outputs(
            self.action_info, spec, context.output_dir if context is not None else None,
            explicit=user.values, given_as=user.given_as, action=action,
            skill_file=_info_file(self.skill))
        notes.extend(routing.notes)
        put("outputs", routing.values)

        for p in user.values:
            if get_path(spec, p, _ABSENT) is _ABSENT:
                notes.append(f"override '{format_path(p)}' is not in the template; key created")
        put("overrides", user.values)
        for p, v in hps.values.items():
            if p in user.values and user.values[p] != v:
                notes.append(f"hyperparameter '{format_path(p)}' = {v!r} replaces the user "
                             f"override {user.values[p]!r}")
        put("hyperparameters", hps.values)

        if self.config_format == "toml":
            self._toml_nones(spec, template_nones, set(applied), notes)

        missing = list(dict.fromkeys(data.missing + params.missing))
        for key in self._empty_inputs(spec):
            if key not in missing:
                missing.append(key)
                notes.append(f"input '{key}' (declared in actions.{action}.inputs, not optional) "
                             "is still empty after the build")
        built = BuiltSpec(
            spec=spec,
            config_format=self.config_format,
            missing_data=missing,
            applied={format_path(p): v for p, v in applied.items()},
            origins={format_path(p): o for p, o in origins.items()},
            archives=dict(data.archives),
            notes=notes,
            outputs=_declared_values(spec, self.action_info),
        )
        if strict and missing:
            raise SpecError.from_message(describe(
                f"spec for action '{action}' of skill '{getattr(info, 'name', '?')}' is missing "
                f"mandatory keys: {', '.join(missing)}",
                key=missing[0],
                expected="dataset_uris for their sources, a parent checkpoint / output_dir in the "
                         "context, or explicit overrides"), key=missing)
        return built

    def resolve_data(self, dataset_uris: Mapping[str, Any] | None, *,
                     user_keys: tuple[str, ...] = (),
                     placeholders: Mapping[str, Any] | None = None) -> DataResolution:
        """Data sources of this action alone (for review/preflight)."""
        info = self.skill.info
        return resolve_data_sources((info.data_sources or {}).get(self.action, {}), dataset_uris,
                                    data_format=info.data_format, user_keys=user_keys,
                                    placeholders=placeholders)

    def write(self, built: BuiltSpec | Mapping[str, Any], path: str) -> str:
        """Write a built spec (or plain dict) in the action's config_format."""
        spec = built.spec if isinstance(built, BuiltSpec) else built
        return write_spec(spec, path, self.config_format)

    def _spec_params(self, context: SpecParamContext | None, explicit: set[str],
                     notes: list[str]) -> SpecParamResolution:
        table = (getattr(self.skill.info, "spec_params", None) or {}).get(self.action, {}) or {}
        todo = {}
        for k, v in table.items():
            if format_path(parse_path(k)) in explicit:
                notes.append(f"spec param '{k}': user-given value kept")
            else:
                todo[k] = v
        if context is None:
            if todo:
                notes.append("no spec_params context given: not applied to "
                             + ", ".join(sorted(todo)))
            return SpecParamResolution()
        res = resolve_spec_params_full(todo, context)
        notes.extend(res.notes)
        return res

    def _empty_inputs(self, spec: dict) -> list[str]:
        out = []
        for key, io in (getattr(self.action_info, "inputs", None) or {}).items():
            optional = io.get("optional") if isinstance(io, Mapping) else getattr(io, "optional",
                                                                                 False)
            if optional:
                continue
            try:
                value = get_path(spec, key, None)
            except SpecError:
                value = None
            if value in (None, "", [], {}):
                out.append(format_path(parse_path(key)))
        return out

    @staticmethod
    def _toml_nones(spec: dict, template_nones: set[Path], applied: set[Path],
                    notes: list[str]) -> None:
        nones = none_leaves(spec)
        from_template = [p for p in nones if p in template_nones and p not in applied]
        dropped = drop_none_leaves(spec, from_template)
        for key in dropped:
            notes.append(f"template key '{key}' is null, which TOML cannot hold; dropped")
        left = [p for p in none_leaves(spec)]
        if left:
            key = format_path(left[0])
            raise SpecError("a None value cannot be written to this action's TOML spec and would be lost",
                            key=key, value=None, expected="a non-null value (TOML has no null)")


_ABSENT = object()


def _info_file(skill: Any) -> str | None:
    root = getattr(skill, "root", None)
    return None if root is None else f"{root}/references/skill_info.yaml"


def _declared_values(spec: dict, action_info: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, kind in declared_outputs(action_info).items():
        if kind in ROUTED_TYPES:
            try:
                out[format_path(parse_path(key))] = get_path(spec, key, None)
            except SpecError:
                continue
    return out
