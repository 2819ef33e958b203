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

from tao_automl.errors import CredentialError, SettingsError, SpecError

__all__ = ["SecretRef", "secret", "env_reference", "secret_names", "replace_secrets", "missing_secrets",
           "resolve_secrets", "check_storage_options", "open_filesystem", "mask_env", "mask_text",
           "mask_bytes", "mask_obj", "MASK"]

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def _valid_name(inst: Any, att: attrs.Attribute, value: Any) -> None:
    if not isinstance(value, str) or not _ENV_NAME.match(value):
        # The string is not echoed: a caller who got this wrong may have passed the secret itself.
        shown = f"<{type(value).__name__} of length {len(value)}, not shown>" if isinstance(value, str) else value
        raise SpecError("invalid secret environment variable name", key="secret", value=shown,
                        expected="a name like MY_TOKEN ([A-Za-z_][A-Za-z0-9_]*); pass the NAME, not the value")


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


_REFERENCE = re.compile(r"\$\{oc\.env:([A-Za-z_][A-Za-z0-9_]*)\}\Z")


def secret_names(values: Any) -> list[str]:
    """Env var names of every :class:`SecretRef` in ``values`` (nested), in order,
    and of every ``${oc.env:NAME}`` string (a saved experiment's overrides
    hold the reference, so a resumed run still forwards NAME)."""
    found: list[str] = []

    def visit(v: Any) -> None:
        if isinstance(v, SecretRef):
            found.append(v.name)
        elif isinstance(v, str):
            m = _REFERENCE.match(v)
            if m:
                found.append(m.group(1))
        elif isinstance(v, Mapping):
            for x in v.values():
                visit(x)
        elif isinstance(v, list | tuple):
            for x in v:
                visit(x)

    visit(values)
    return list(dict.fromkeys(found))


def replace_secrets(values: Any) -> Any:
    """A copy of ``values`` with every :class:`SecretRef` replaced by its ``${oc.env:NAME}``."""
    return _walk(values, lambda ref: ref.reference())


def missing_secrets(names: list[str], environ: Mapping[str, str] | None = None) -> list[str]:
    """Names (never values) of the secret env vars that are unset or empty."""
    env = os.environ if environ is None else environ
    return [n for n in names if not env.get(n)]



def resolve_secrets(values: Any, *, what: str = "storage_options") -> Any:
    """A copy of ``values`` with every :class:`SecretRef` replaced by its value
    from this process's environment (CredentialError naming an unset variable).
    For in-memory use only (e.g. opening an fsspec filesystem): never persist
    the result."""

    def value(ref: SecretRef) -> str:
        got = os.environ.get(ref.name)
        if not got:
            raise CredentialError("secret environment variable is not set", key=what, value=ref.name,
                                  expected="the variable exported in this process's environment (checked by name only)")
        return got

    return _walk(values, value)


#: storage_options keys that carry credentials (fsspec: s3fs, gcsfs, adlfs, ...).
CREDENTIAL_KEYS = frozenset({
    "key", "secret", "token", "password", "passwd", "access_key", "secret_key", "session_token",
    "aws_access_key_id", "aws_secret_access_key", "aws_session_token", "account_key", "sas_token",
    "client_secret", "connection_string", "credential", "credentials",
})


# gcsfs-style token strategies, not secrets.
_TOKEN_MODES = ("anon", "google_default", "cache", "cloud", "browser")


def check_storage_options(options: Any, *, path: str = "storage_options") -> None:
    """Credentials in ``storage_options`` must be :func:`secret` references.

    The options travel with every trial (Ray pickles the trial plan into the
    experiment state in the workspace), so a literal credential would be
    written to storage.  Raises SettingsError naming the key (never the value).
    """
    if isinstance(options, Mapping):
        for k, v in options.items():
            where = f"{path}.{k}"
            if isinstance(k, str) and k.lower() in CREDENTIAL_KEYS and v not in (None, "", False) \
                    and not isinstance(v, SecretRef) and not (k == "token" and v in _TOKEN_MODES):
                raise SettingsError("a credential in storage_options would be written to the workspace",
                                    key=where, value="<not shown>",
                                    expected="tao_automl.secret('ENV_NAME') (resolved in each process), or the "
                                             "storage's standard environment variables / profile")
            check_storage_options(v, path=where)


def _reopen_filesystem(cls: type, options: dict[str, Any]) -> Any:
    return cls(**resolve_secrets(options))


def open_filesystem(url: str, storage_options: Mapping[str, Any] | None) -> tuple[Any, str]:
    """``fsspec.core.url_to_fs`` with :class:`SecretRef` options resolved in memory.

    When the options hold secret references, the filesystem pickles as
    "re-open with these *references*" instead of fsspec's default (its
    resolved keyword arguments): Ray pickles the filesystem into the
    experiment state it writes to the workspace, and an unpickling process
    resolves the references from its own environment.
    """
    import functools

    import fsspec

    options = dict(storage_options or {})
    fs, path = fsspec.core.url_to_fs(url, **resolve_secrets(options))
    if secret_names(options):
        fs.__dict__["__reduce__"] = functools.partial(lambda c, o: (_reopen_filesystem, (c, o)),
                                                      type(fs), options)
    return fs, path


# -- masking: secret values never reach a file the package writes ------------------------

#: What a masked secret value reads as in logs and workspace files.
MASK = "***"
_MASK_NAMES: set[str] = set()


def mask_env(names: Any) -> None:
    """Mask the values of env vars ``names`` (``secret_env``, ``secret("ENV")``
    references) in everything this process writes to the workspace or WandB
    from now on.  Names only are kept; values are read from this process's
    environment when masking (each Ray worker registers the plan's names)."""
    _MASK_NAMES.update(n for n in names or () if isinstance(n, str) and _ENV_NAME.match(n))


def _values() -> list[str]:
    vals = {os.environ.get(n, "") for n in _MASK_NAMES}
    return sorted((v for v in vals if len(v) > 3), key=len, reverse=True)


def mask_text(text: str, values: Any = None) -> str:
    """``text`` with every registered secret value (and ``values``) replaced by ``***``;
    the JSON-escaped spelling of a value is masked too."""
    import json

    vals = _values() if values is None else sorted((v for v in values if v and len(v) > 3), key=len,
                                                     reverse=True)
    for v in vals:
        text = text.replace(v, MASK)
        escaped = json.dumps(v, ensure_ascii=False)[1:-1]
        if escaped != v:
            text = text.replace(escaped, MASK)
        ascii_escaped = json.dumps(v)[1:-1]
        if ascii_escaped not in (v, escaped):
            text = text.replace(ascii_escaped, MASK)
    return text


def mask_bytes(data: bytes) -> bytes:
    """:func:`mask_text` for bytes (UTF-8 spellings of the values)."""
    if not _MASK_NAMES:
        return data
    import json

    for v in _values():
        for spelling in dict.fromkeys((v, json.dumps(v, ensure_ascii=False)[1:-1], json.dumps(v)[1:-1])):
            data = data.replace(spelling.encode("utf-8", "surrogateescape"), MASK.encode())
    return data


def mask_obj(value: Any) -> Any:
    """A copy of a JSON-like ``value`` with secret values masked in every string
    (keys included); for WandB configs, summaries and tables."""
    if not _MASK_NAMES:
        return value
    if isinstance(value, str):
        return mask_text(value)
    if isinstance(value, Mapping):
        return {mask_obj(k): mask_obj(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(mask_obj(v) for v in value)
    return value
