"""LLM-guided search: an endpoint client, the ``llm`` algorithm and the brain log.

* :mod:`.client`: bounded-retry client for OpenAI-compatible servers.
* :mod:`.prompt`: what the LLM is asked, the reply contract, JSON extraction.
* :mod:`.validate`: proposals checked against the schema-gated space.
* :mod:`.brain`: the append-only audit trail ``<workspace>/brain/`` and :func:`audit`.
* :mod:`.searcher`: :class:`LLMSearcher`, the Ray Tune searcher of ``llm``.
* :mod:`.hybrid`: ``hybrid`` (recommended): the LLM plans phases, registry
  algorithms (bayesian, random, grid) sweep them.
* :mod:`.autoresearch`: ``autoresearch``: a keep/discard loop of LLM changes
  to the incumbent with a noise margin.

The client, validation, brain log and the no-silent-fallback rule are shared.  ``openai`` is imported only when a call is made (the
``[llm]`` extra).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tao_automl.algorithms import AlgorithmSpec, BuildContext, SearchPlan, register
from tao_automl.errors import CredentialError, SettingsError

__all__ = ["build_llm", "build_hybrid", "build_autoresearch", "check_llm_settings", "skill_notes"]

NOTE_KEYS = ("hpo_notes", "automl_notes", "hpo")


def skill_notes(skill: Any) -> str:
    """The model skill's HPO advice: ``SKILL.md`` and ``skill_info.yaml``'s
    ``hpo_notes`` (or ``automl_notes``) when present."""
    parts = []
    extra = getattr(getattr(skill, "info", None), "extra", None) or {}
    for key in NOTE_KEYS:
        if extra.get(key):
            parts.append(f"skill_info.yaml {key}:\n{extra[key]}")
    root = getattr(skill, "root", None)
    if root is not None and (Path(root) / "SKILL.md").is_file():
        parts.append("SKILL.md:\n" + (Path(root) / "SKILL.md").read_text(encoding="utf-8", errors="replace"))
    return "\n\n".join(parts)


def check_llm_settings(settings: Any, *, environ: Any = None, algorithm: str = "llm") -> None:
    """Before launch: endpoint and model given, the API key's variable set, openai installed."""
    import os

    for key, what, hint in (
            ("llm_endpoint", "an endpoint", "the base URL of an OpenAI-compatible server, e.g. http://localhost:8000/v1"),
            ("llm_model", "a model name", "the model name the server serves, e.g. meta/llama-3.1-8b-instruct")):
        if not getattr(settings, key):
            raise SettingsError(f"algorithm '{algorithm}' needs {what}", key=f"automl_settings.{key}",
                                value=None, expected=hint)
    if algorithm in ("hybrid", "autoresearch") and settings.llm_fallback is not None:
        raise SettingsError(f"this setting does not apply to algorithm '{algorithm}'",
                            key="automl_settings.llm_fallback", value=settings.llm_fallback,
                            expected=f"leave it out ({algorithm} never substitutes anything for an "
                                     "LLM reply: a failed call or invalid reply stops the run with "
                                     "LLMError)")
    from tao_automl.config.settings import AUTORESEARCH_SETTINGS

    if algorithm != "autoresearch":
        for key in AUTORESEARCH_SETTINGS:
            value = getattr(settings, key)
            if value not in (None, 0.0):
                raise SettingsError(f"this setting does not apply to algorithm '{algorithm}'",
                                    key=f"automl_settings.{key}", value=value,
                                    expected="leave it out, or use algorithm 'autoresearch'")
    elif (settings.autoresearch_noise_margin == 0
          and settings.max_recommendations < 2 + (settings.autoresearch_repeats or 2)):
        repeats = settings.autoresearch_repeats or 2
        raise SettingsError("autoresearch's budget leaves no trial for a change",
                            key="automl_settings.max_recommendations", value=settings.max_recommendations,
                            expected=f">= {2 + repeats} (1 incumbent run + {repeats} re-runs measuring the "
                                     "noise margin + at least 1 change)",
                            hint="raise max_recommendations, lower autoresearch_repeats, or give "
                                 "autoresearch_noise_margin")
    elif settings.autoresearch_noise_margin > 0 and settings.autoresearch_repeats is not None:
        raise SettingsError("autoresearch_repeats measures the noise margin, which is given",
                            key="automl_settings.autoresearch_repeats", value=settings.autoresearch_repeats,
                            expected="leave it out with autoresearch_noise_margin > 0, or set "
                                     "autoresearch_noise_margin: 0 to measure it")
    ref = settings.llm_api_key
    env = os.environ if environ is None else environ
    if ref is not None and not env.get(ref.name):
        raise CredentialError("the LLM API key's environment variable is unset or empty",
                              key="automl_settings.llm_api_key", value=f"secret({ref.name!r})",
                              expected=f"{ref.name} set in the driver's environment")
    try:
        import openai  # noqa: F401
    except ImportError as exc:
        raise SettingsError(f"algorithm '{algorithm}' needs the openai package", key="automl_algorithm",
                            value=algorithm, expected="openai installed",
                            hint="pip install 'tao-automl[llm]'") from exc


def _build(ctx: BuildContext, algorithm: str, searcher: Any, **extra: Any) -> SearchPlan:
    """The shared builder of the LLM-guided algorithms: settings checked, the
    brain log opened, the ``searcher`` class made."""
    from tao_automl.algorithms.llm.brain import BrainLog

    check_llm_settings(ctx.settings, algorithm=algorithm)
    ws = ctx.workspace
    brain = BrainLog(ws.root, getattr(ws, "_storage_options", None)) if ws is not None else None
    search = searcher(space=ctx.space, metric=ctx.metric, mode=ctx.mode, settings=ctx.settings,
                      budget=ctx.settings.max_recommendations, brain=brain, stop=ctx.stop,
                      notes=ctx.notes, enforce_kwargs=ctx.enforce_kwargs, **extra)
    return SearchPlan(search_alg=search, scheduler=None, num_samples=ctx.settings.max_recommendations)


def build_llm(ctx: BuildContext) -> SearchPlan:
    from tao_automl.algorithms.llm.searcher import LLMSearcher

    return _build(ctx, "llm", LLMSearcher)


def build_hybrid(ctx: BuildContext) -> SearchPlan:
    from tao_automl.algorithms.llm.hybrid import HybridSearcher

    return _build(ctx, "hybrid", HybridSearcher, max_epochs=ctx.max_epochs)


def build_autoresearch(ctx: BuildContext) -> SearchPlan:
    from tao_automl.algorithms.llm.autoresearch import AutoResearchSearcher

    return _build(ctx, "autoresearch", AutoResearchSearcher)


def _no_batch(settings: Any, space: Any, rng: Any) -> list[dict[str, Any]]:
    return []  # an LLM proposes every configuration at run time


def _endpoint(settings: Any) -> str:
    return f"model {settings.llm_model!r} at {settings.llm_endpoint}"


def _llm_notes(settings: Any) -> list[str]:
    return [f"llm: every configuration is proposed at run time by {_endpoint(settings)} "
            "(no initial batch; audit trail in brain/)"]


def _hybrid_notes(settings: Any) -> list[str]:
    return [f"hybrid: {_endpoint(settings)} plans each phase at run time (parameters, algorithm, trials); "
            "bayesian/random/grid sweep it with the rest at the incumbent (no initial batch; audit trail in brain/)"]


def _autoresearch_notes(settings: Any) -> list[str]:
    margin = (f"noise margin {settings.autoresearch_noise_margin:g} (given)"
              if settings.autoresearch_noise_margin > 0 else
              f"noise margin measured by {settings.autoresearch_repeats or 2} re-run(s) of the incumbent "
              "(counted in max_recommendations)")
    return [f"autoresearch: {_endpoint(settings)} proposes changes to the incumbent; one trial at a time "
            "(each change builds on the last verdict"
            + (f"; max_concurrent {settings.max_concurrent} is not used" if settings.max_concurrent > 1 else "")
            + f"); {margin}; audit trail in brain/"]


LLM_SETTINGS_USED = ("llm_endpoint", "llm_model", "llm_api_key", "llm_temperature", "llm_max_tokens",
                     "llm_timeout_s", "llm_max_retries", "llm_fallback", "llm_prompt_max_chars",
                     "max_recommendations", "max_concurrent", "seed")
HYBRID_SETTINGS_USED = tuple(k for k in LLM_SETTINGS_USED if k != "llm_fallback") + ("grid_points",)


def _register(**entry: Any) -> None:
    """An LLM-guided registry entry: model-based, needs openai, no initial batch."""
    register(AlgorithmSpec(model_based=True, extra_requires=("openai",), llm_guided=True,
                           initial_batch_fn=_no_batch, **entry))


_register(
    name="llm", build=build_llm, settings_used=LLM_SETTINGS_USED, review_notes_fn=_llm_notes,
    description="LLM-guided: every configuration proposed by an LLM on an OpenAI-compatible endpoint "
                "(audit trail in brain/).")
_register(
    name="hybrid", build=build_hybrid, settings_used=HYBRID_SETTINGS_USED, review_notes_fn=_hybrid_notes,
    description="LLM-guided (recommended): an LLM plans phases (which parameters, which registry "
                "algorithm -- bayesian, random or grid -- and how many trials); the algorithm sweeps them "
                "with the rest at the incumbent (audit trail in brain/).")
_register(
    name="autoresearch", build=build_autoresearch, review_notes_fn=_autoresearch_notes,
    settings_used=tuple(k for k in LLM_SETTINGS_USED if k not in ("llm_fallback", "max_concurrent"))
    + ("research_program", "autoresearch_noise_margin", "autoresearch_repeats"),
    description="LLM-guided keep/discard loop: the LLM proposes changes to the incumbent, one trial at a "
                "time; a change is kept only when it beats the incumbent by more than the noise margin.")
