"""Secret spec values: pass a credential to jobs without ever writing it.

>>> from tao_automl import secret
>>> overrides = {"train.wandb_api_key": secret("WANDB_API_KEY")}   # doctest: +SKIP

A :class:`SecretRef` stands for the *value* of an environment variable.  The
spec builder writes the OmegaConf/Hydra interpolation ``${oc.env:NAME}``
(the same convention as the ``key`` spec_params function), never the value;
the runner adds ``NAME`` to every job's ``secret_env`` so the platform
backend copies the value from its own environment into the job's; and
preflight checks that ``NAME`` is set -- by name only, the value is never
read into a message, a spec, a result file or WandB.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

import attrs

from tao_automl.errors import SpecError, describe

__all__ = ["SecretRef", "secret", "env_reference", "secret_names", "replace_secrets", "missing_secrets"]

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def _valid_name(inst: Any, att: attrs.Attribute, value: Any) -> None:
    if not isinstance(value, str) or not _ENV_NAME.match(value):
        # The string is not echoed: a caller who got this wrong may have passed the secret itself.
        shown = f"<{type(value).__name__} of length {len(value)}, not shown>" if isinstance(value, str) else value
        raise SpecError(
            describe("invalid secret environment variable name", key="secret", value=shown,
                     expected="a name like MY_TOKEN ([A-Za-z_][A-Za-z0-9_]*); pass the NAME, not the value"),
            key="secret")


@attrs.frozen(repr=False)
class SecretRef:
    """The value of environment variable ``name``, resolved only inside the job."""

    name: str = attrs.field(validator=_valid_name)

    def reference(self) -> str:
        """What the spec holds: ``${oc.env:NAME}``."""
        return env_reference(self.name)

    def to_dict(self) -> dict[str, str]:
        return {"secret_env": self.name}

    def __repr__(self) -> str:
        return f"secret({self.name!r})"

    __str__ = __repr__


def secret(name: str) -> SecretRef:
    """Mark a ``spec_overrides`` value as the secret held in env var ``name``."""
    return SecretRef(name)


def env_reference(name: str) -> str:
    """``${oc.env:NAME}``: resolved from the job's environment by OmegaConf."""
    return "${oc.env:" + name + "}"


def _walk(value: Any, fn: Any) -> Any:
    if isinstance(value, SecretRef):
        return fn(value)
    if isinstance(value, Mapping):
        return {k: _walk(v, fn) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_walk(v, fn) for v in value)
    return value


def secret_names(values: Any) -> list[str]:
    """Env var names of every :class:`SecretRef` in ``values`` (nested), in order."""
    found: list[str] = []
    _walk(values, lambda ref: found.append(ref.name))
    return list(dict.fromkeys(found))


def replace_secrets(values: Any) -> Any:
    """A copy of ``values`` with every :class:`SecretRef` replaced by its ``${oc.env:NAME}``."""
    return _walk(values, lambda ref: ref.reference())


def missing_secrets(names: list[str], environ: Mapping[str, str] | None = None) -> list[str]:
    """Names (never values) of the secret env vars that are unset or empty."""
    env = os.environ if environ is None else environ
    return [n for n in names if not env.get(n)]

