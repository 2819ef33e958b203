"""One behavioural contract for every platform backend: the shipped suite
:class:`tao_automl.testing.platform.PlatformContract`, run over the local
backend, the TAO SDK adapter and (marker ``slurm``) real SLURM (see
conftest.backend).  The Docker, Kubernetes and Brev backends run the same
suite against their client-boundary fakes (tests/unit/test_platform_*.py)."""

from __future__ import annotations

import pytest

from tao_automl.testing.platform import PlatformContract


class TestPlatformContract(PlatformContract):
    @pytest.fixture
    def platform_harness(self, backend):
        return backend
