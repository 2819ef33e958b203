"""Platform backends: where trial jobs run.

``get_backend(spec, **kwargs)`` returns a :class:`PlatformBackend`:

* ``None`` or ``"local"`` -> :class:`LocalBackend` (the embedded default)
* ``"slurm"``, ``"docker"``, ``"kubernetes"`` (alias ``"k8s"``), ``"brev"``
* an object that already implements :class:`PlatformBackend` passes through;
  kwargs then go to its ``configure(**kwargs)`` if it has one (else they must
  be empty).
* a TAO SDK platform object (nvidia-tao-sdk's ``VirtualEnvSDK``, ``DockerSDK``,
  ``SlurmSDK``...: ``create_job``/``create_python_job``, ``get_job_status``...)
  -> :class:`~tao_automl.platforms.tao_sdk.TaoSdkBackend` around it.

Every backend takes ``gpu_count`` (default GPUs per job); unknown kwargs raise
:class:`~tao_automl.errors.SettingsError` naming the kwarg and listing the
accepted ones.  Client packages (docker, kubernetes) are imported lazily.
"""

from __future__ import annotations

from typing import Any

from tao_automl.errors import SettingsError
from tao_automl.platforms.base import (
    FailureReason,
    JobHandle,
    JobRequest,
    JobState,
    JobStatus,
    PlatformBackend,
)
from tao_automl.platforms.brev import BrevBackend
from tao_automl.platforms.classify import classify_failure
from tao_automl.platforms.docker import DockerBackend
from tao_automl.platforms.kubernetes import KubernetesBackend
from tao_automl.platforms.local import LocalBackend
from tao_automl.platforms.slurm import SlurmBackend
from tao_automl.platforms.tao_sdk import TaoSdkBackend, is_tao_sdk

__all__ = [
    "BACKENDS",
    "get_backend",
    "accepted_options",
    "classify_failure",
    "LocalBackend",
    "SlurmBackend",
    "DockerBackend",
    "KubernetesBackend",
    "BrevBackend",
    "TaoSdkBackend",
    "FailureReason",
    "JobHandle",
    "JobRequest",
    "JobState",
    "JobStatus",
    "PlatformBackend",
]

#: name -> backend class (aliases included).
BACKENDS: dict[str, type] = {
    "local": LocalBackend,
    "slurm": SlurmBackend,
    "docker": DockerBackend,
    "kubernetes": KubernetesBackend,
    "k8s": KubernetesBackend,
    "brev": BrevBackend,
}


def accepted_options(name: str) -> list[str]:
    """Sorted kwarg names the named backend accepts."""
    return sorted(BACKENDS[name].OPTIONS)


def get_backend(spec: str | PlatformBackend | None = None, **kwargs: Any) -> PlatformBackend:
    """Build (or pass through) a platform backend; see the module docstring."""
    if spec is None:
        spec = "local"
    if isinstance(spec, str):
        key = spec.strip().lower()
        if key not in BACKENDS:
            raise SettingsError("unknown platform", key="platform", value=spec,
                                expected="one of " + ", ".join(sorted(BACKENDS)) + " or a PlatformBackend")
        return BACKENDS[key](**kwargs)
    if is_tao_sdk(spec):
        return TaoSdkBackend(spec, **kwargs)
    if isinstance(spec, PlatformBackend):
        if kwargs:
            configure = getattr(spec, "configure", None)
            if not callable(configure):
                raise SettingsError("platform kwargs given for a backend object without configure()",
                                    key=sorted(kwargs), value=type(spec).__name__,
                                    expected="no kwargs, or a backend with configure(**kwargs)")
            configure(**kwargs)
        return spec
    raise SettingsError("platform is neither a name nor a PlatformBackend", key="platform",
                        value=type(spec).__name__,
                        expected="one of " + ", ".join(sorted(BACKENDS)) + ", an object with "
                                 "submit/status/wait/logs/cancel/list_artifacts/read_artifact/cleanup, or a "
                                 "TAO SDK platform object (create_job or create_python_job, get_job_status, "
                                 "get_job_logs, cancel_job)")
