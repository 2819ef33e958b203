"""attrs value classes describing a model skill's ``references/skill_info.yaml``.

Every class keeps the keys it does not know in ``extra`` so nothing a skill
declares is dropped.
"""

from __future__ import annotations

from typing import Any

import attrs

__all__ = ["IOSpec", "Execution", "ActionInfo", "DataSource", "SkillInfo"]


@attrs.frozen
class IOSpec:
    """One entry of an action's ``inputs``/``outputs`` (keyed by spec path).
    Outputs of type ``folder``/``file`` are routed into each job's own folder
    (:mod:`tao_automl.spec.outputs`)."""

    type: str | None = None
    optional: bool = False
    extra: dict[str, Any] = attrs.field(factory=dict)


@attrs.frozen
class Execution:
    """How to run an action other than through ``command``.

    ``type: python_script`` runs ``script`` with ``args`` (which may contain
    ``{config_path}``); ``script`` is found relative to ``cwd`` (itself
    relative to the skill root when not absolute) and run by absolute path.
    The process itself runs in the job's own folder, never in the skill
    folder (see :func:`tao_automl.execution.jobs.build_job_request`).
    """

    type: str
    script: str | None = None
    args: list[str] = attrs.field(factory=list)
    cwd: str | None = None
    extra: dict[str, Any] = attrs.field(factory=dict)


@attrs.frozen
class ActionInfo:
    """One entry of ``actions`` (``train``, ``evaluate``, ...)."""

    name: str
    command: str | None = None
    config_format: str = "yaml"
    mode: str | None = None
    execution: Execution | None = None
    inputs: dict[str, IOSpec] = attrs.field(factory=dict)
    outputs: dict[str, IOSpec] = attrs.field(factory=dict)
    upload_excludes: list[str] = attrs.field(factory=list)
    container_image: str | None = None
    container_image_key: str | None = None
    metric: str | None = None
    metric_direction: str | None = None
    metric_file: str | None = None
    automl_default_parameters: list[str] | None = None
    extra: dict[str, Any] = attrs.field(factory=dict)


@attrs.frozen
class DataSource:
    """One entry of ``data_sources.<action>`` (keyed by spec path)."""

    source: str | None = None
    path: Any = None
    runtime: str | None = None
    list: bool = False
    mapping: dict[str, Any] | None = None
    path_from_format: dict[str, Any] | None = None
    optional: bool = False
    multiple_sources: bool | None = None
    extra: dict[str, Any] = attrs.field(factory=dict)


@attrs.frozen
class SkillInfo:
    """The whole of ``references/skill_info.yaml``.

    ``name`` falls back to the skill directory's name when the file has none.
    ``container_image_key`` is the ``# versions-key:`` annotation of the
    ``container_image`` line, or the bare versions key the file gave instead
    of an image (then ``container_image`` is the image resolved through
    ``versions.yaml``, or ``None`` when no such file was found).
    """

    name: str
    network_arch: str | None = None
    description: str | None = None
    automl_enabled: bool = False
    container_image: str | None = None
    container_image_key: str | None = None
    gpu_spec_key: str | None = None
    node_spec_key: str | None = None
    data_format: str | None = None
    actions: dict[str, ActionInfo] = attrs.field(factory=dict)
    data_sources: dict[str, dict[str, DataSource]] = attrs.field(factory=dict)
    spec_params: dict[str, dict[str, Any]] = attrs.field(factory=dict)
    key_defaults: dict[str, Any] = attrs.field(factory=dict)
    spec_shorthand_keys: dict[str, str] = attrs.field(factory=dict)
    spec_templates: dict[str, str] = attrs.field(factory=dict)
    required_credentials: list[str] = attrs.field(factory=list)
    conditional_credentials: dict[str, Any] = attrs.field(factory=dict)
    metric: str | None = None
    metric_direction: str | None = None
    extra: dict[str, Any] = attrs.field(factory=dict)
