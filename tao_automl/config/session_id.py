"""The one rule for session ids (experiment folder names), shared by the
settings, the workspace and the CLI plan files."""

from __future__ import annotations

import re
from typing import Any

from tao_automl.errors import SettingsError

__all__ = ["SESSION_ID_RULE", "check_session_id"]

#: A session id names one folder directly under workspace_dir: a letter or
#: digit first, then letters, digits, '.', '_' or '-'; at most 128 characters.
_SESSION_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}\Z")
SESSION_ID_RULE = ("a folder name: a letter or digit, then letters, digits, '.', '_' or '-' "
                   "(at most 128 characters; no '/', '..' or spaces)")


def check_session_id(value: Any, *, key: str = "session_id", file: Any = None) -> str:
    """``value`` if it is a safe session id (see :data:`SESSION_ID_RULE`), else a
    SettingsError naming ``key`` and the value: a session id becomes a folder
    under workspace_dir, so ``../x``, ``..``, ``.``, separators, newlines or
    NUL would write outside it (or somewhere surprising)."""
    if not isinstance(value, str) or not _SESSION_ID.match(value):
        raise SettingsError("invalid session id", file=file, key=key, value=value, expected=SESSION_ID_RULE)
    return value
