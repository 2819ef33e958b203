"""Container-image keys: ``# versions-key:`` comments and bare keys resolved
through a skill bank's ``versions.yaml``."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from tao_automl.config import safe_yaml
from tao_automl.errors import SkillError

__all__ = ["annotated_keys", "find_versions_file", "is_bare_key", "lookup_key"]

_ANNOT = re.compile(
    r"""^\s*(?:-\s*)?container_image\s*:\s*(?P<q>['"]?)(?P<value>[^'"#\s]+)(?P=q)\s*"""
    r"""#\s*versions-key\s*:\s*(?P<key>\S+)"""
)


def annotated_keys(text: str) -> dict[str, str]:
    """Map each annotated ``container_image`` value to its versions key.

    ``container_image: img:tag  # versions-key: images.a.b`` -> ``{"img:tag": "images.a.b"}``.
    """
    out: dict[str, str] = {}
    for line in text.splitlines():
        m = _ANNOT.match(line)
        if m:
            out[m.group("value")] = m.group("key")
    return out


def is_bare_key(value: str) -> bool:
    """Whether an image value is a bare versions key such as ``tao_toolkit.pyt``.

    A bare key is a dotted identifier with no ``/`` (no registry/repository)
    and no ``:`` (no tag).  Anything else is taken to be an image reference.
    """
    return bool(re.fullmatch(r"[A-Za-z_][\w-]*(\.[A-Za-z_][\w-]*)+", value))


def find_versions_file(start: Path, explicit: str | Path | None = None) -> Path | None:
    """``explicit`` when given (SkillError if missing), else the first
    ``versions.yaml`` found walking up from ``start``."""
    if explicit is not None:
        p = Path(explicit)
        if not p.is_file():
            raise SkillError("versions file not found", file=p, key="versions_file",
                             expected="an existing versions.yaml")
        return p
    for d in [start, *start.parents]:
        cand = d / "versions.yaml"
        if cand.is_file():
            return cand
    return None


def lookup_key(versions_file: Path, key: str) -> tuple[str, str] | None:
    """Resolve ``key`` (``images.a.b`` or ``a.b``) in ``versions_file``.

    Returns ``(full_key, value)`` or ``None`` when absent.
    """
    try:
        data: Any = safe_yaml.load_file(versions_file) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise SkillError("versions file does not parse", file=versions_file, value=str(exc), expected="YAML") from exc
    for full in (key, f"images.{key}"):
        node = data
        for part in full.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, str):
            return full, node
    return None
