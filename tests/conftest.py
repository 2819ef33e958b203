"""Fixtures shared by every test folder."""

from __future__ import annotations

import pytest

from tao_automl.testing.llm_server import ScriptedLLMServer


@pytest.fixture
def llm_server():
    """A scripted OpenAI-compatible server on 127.0.0.1 (see tao_automl.testing.llm_server).
    Script replies with ``llm_server.script(...)`` or set ``llm_server.policy``."""
    with ScriptedLLMServer() as srv:
        yield srv
