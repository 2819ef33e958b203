"""Sessions: tests (default CI run), slow, slurm (real SLURM controller),
lint, bench, bench-quick."""

from __future__ import annotations

import os

import nox

nox.options.sessions = ["lint", "tests"]
nox.options.reuse_venv = "yes"

PY = "3.11"
TEST_ENV = {"WANDB_MODE": "offline", "RAY_USAGE_STATS_ENABLED": "0", "PYTHONHASHSEED": "0"}


def _install(session: nox.Session, extras: str = "test") -> None:
    # constraints.txt pins a resolved, tested set: without it pip's resolver
    # backtracks for minutes through boto/aiobotocore/ray versions.
    session.install("--upgrade", "pip")
    session.install("-c", "constraints.txt", "-e", f".[{extras}]")


@nox.session(python=PY)
def tests(session: nox.Session) -> None:
    """The default suite (unit, contract on local, integration): < 15 minutes."""
    _install(session)
    session.run("pytest", "-q", "-ra", *session.posargs, env=TEST_ENV)


@nox.session(python=PY)
def slow(session: nox.Session) -> None:
    """Long end-to-end tests (every algorithm on the toy model, crash/resume)."""
    _install(session)
    session.run("pytest", "-q", "-ra", "-m", "slow", *session.posargs, env=TEST_ENV)


@nox.session(python=PY)
def slurm(session: nox.Session) -> None:
    """Starts a real SLURM controller + node on localhost (Debian packages,
    needs root) and runs the backend contract suite through it."""
    _install(session)
    session.run("bash", ".ci/slurm-up.sh", external=True)
    session.run(
        "pytest", "-q", "-ra", "-m", "slurm", "tests/contract", "tests/integration",
        *session.posargs, env=TEST_ENV,
    )


@nox.session(python=PY)
def lint(session: nox.Session) -> None:
    """ruff, then the layers contract (pyproject.toml [tool.importlinter]):
    imports point only downward, docs/architecture.md."""
    session.install("-c", "constraints.txt", "ruff", "import-linter")
    session.run("ruff", "check", "tao_automl", "tests", "examples", "benchmarks", "noxfile.py")
    # lint-imports imports nothing from the package: it reads the sources on
    # the path, so the package itself need not be installed here.
    session.run("lint-imports", env={"PYTHONPATH": "."})


@nox.session(python=PY, name="bench")
def bench(session: nox.Session) -> None:
    """Full benchmarks (< 30 minutes on 2 cores)."""
    _install(session, "dev")
    session.run("python", "-m", "benchmarks", "--full", *session.posargs, env=TEST_ENV)


@nox.session(python=PY, name="bench-quick")
def bench_quick(session: nox.Session) -> None:
    """Reduced benchmarks (< 5 minutes)."""
    _install(session, "dev")
    session.run("python", "-m", "benchmarks", "--quick", *session.posargs, env=TEST_ENV)


if os.environ.get("CI"):
    nox.options.error_on_missing_interpreters = True
