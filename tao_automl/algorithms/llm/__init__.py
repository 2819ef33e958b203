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
from tao_automl.errors import CredentialError, SettingsError, describe

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
            raise SettingsError(describe(f"algorithm '{algorithm}' needs {what}", key=f"automl_settings.{key}",
                                         value=None, expected=hint), key=f"automl_settings.{key}")
    if algorithm in ("hybrid", "autoresearch") and settings.llm_fallback is not None:
        raise SettingsError(describe(f"this setting does not apply to algorithm '{algorithm}'",
                                     key="automl_settings.llm_fallback", value=settings.llm_fallback,
                                     expected=f"leave it out ({algorithm} never substitutes anything for an "
                                              "LLM reply: a failed call or invalid reply stops the run with "
                                              "LLMError)"),
                            key="automl_settings.llm_fallback")
    from tao_automl.config.settings import AUTORESEARCH_SETTINGS

    if algorithm != "autoresearch":
        for key in AUTORESEARCH_SETTINGS:
            value = getattr(settings, key)
            if value not in (None, 0.0):
                raise SettingsError(describe(f"this setting does not apply to algorithm '{algorithm}'",
                                             key=f"automl_settings.{key}", value=value,
                                             expected="leave it out, or use algorithm 'autoresearch'"),
                                    key=f"automl_settings.{key}")
    elif (settings.autoresearch_noise_margin == 0
          and settings.max_recommendations < 2 + (settings.autoresearch_repeats or 2)):
        repeats = settings.autoresearch_repeats or 2
        raise SettingsError(describe("autoresearch's budget leaves no trial for a change",
                                     key="automl_settings.max_recommendations", value=settings.max_recommendations,
                                     expected=f">= {2 + repeats} (1 incumbent run + {repeats} re-runs measuring the "
                                              "noise margin + at least 1 change)",
                                     hint="raise max_recommendations, lower autoresearch_repeats, or give "
                                          "autoresearch_noise_margin"),
                            key="automl_settings.max_recommendations")
    elif settings.autoresearch_noise_margin > 0 and settings.autoresearch_repeats is not None:
        raise SettingsError(describe("autoresearch_repeats measures the noise margin, which is given",
                                     key="automl_settings.autoresearch_repeats",
                                     value=settings.autoresearch_repeats,
                                     expected="leave it out with autoresearch_noise_margin > 0, or set "
                                              "autoresearch_noise_margin: 0 to measure it"),
                            key="automl_settings.autoresearch_repeats")
    ref = settings.llm_api_key
    env = os.environ if environ is None else environ
    if ref is not None and not env.get(ref.name):
        raise CredentialError(describe("the LLM API key's environment variable is unset or empty",
                                       key="automl_settings.llm_api_key", value=f"secret({ref.name!r})",
                                       expected=f"{ref.name} set in the driver's environment"),
                              key="automl_settings.llm_api_key")
    try:
        import openai  # noqa: F401
    except ImportError as exc:
        raise SettingsError(describe(f"algorithm '{algorithm}' needs the openai package", key="automl_algorithm",
                                     value=algorithm, expected="openai installed",
                                     hint="pip install 'tao-automl[llm]'"), key="automl_algorithm") from exc


def build_llm(ctx: BuildContext) -> SearchPlan:
    from tao_automl.algorithms.llm.brain import BrainLog
    from tao_automl.algorithms.llm.searcher import LLMSearcher

    check_llm_settings(ctx.settings)
    ws = ctx.workspace
    brain = BrainLog(ws.root, getattr(ws, "_storage_options", None)) if ws is not None else None
    searcher = LLMSearcher(space=ctx.space, metric=ctx.metric, mode=ctx.mode, settings=ctx.settings,
                           budget=ctx.settings.max_recommendations, brain=brain, stop=ctx.stop,
                           notes=ctx.notes, enforce_kwargs=ctx.enforce_kwargs)
    return SearchPlan(search_alg=searcher, scheduler=None, num_samples=ctx.settings.max_recommendations)


LLM_SETTINGS_USED = ("llm_endpoint", "llm_model", "llm_api_key", "llm_temperature", "llm_max_tokens",
                     "llm_timeout_s", "llm_max_retries", "llm_fallback", "llm_prompt_max_chars",
                     "max_recommendations", "max_concurrent", "seed")
HYBRID_SETTINGS_USED = tuple(k for k in LLM_SETTINGS_USED if k != "llm_fallback") + ("grid_points",)

register(
    AlgorithmSpec(
        name="llm",
        description="LLM-guided: every configuration proposed by an LLM on an OpenAI-compatible endpoint "
                    "(audit trail in brain/).",
        build=build_llm,
        settings_used=LLM_SETTINGS_USED,
        model_based=True,
        extra_requires=("openai",),
        llm_guided=True,
    )
)


def build_hybrid(ctx: BuildContext) -> SearchPlan:
    from tao_automl.algorithms.llm.brain import BrainLog
    from tao_automl.algorithms.llm.hybrid import HybridSearcher

    check_llm_settings(ctx.settings, algorithm="hybrid")
    ws = ctx.workspace
    brain = BrainLog(ws.root, getattr(ws, "_storage_options", None)) if ws is not None else None
    searcher = HybridSearcher(space=ctx.space, metric=ctx.metric, mode=ctx.mode, settings=ctx.settings,
                              budget=ctx.settings.max_recommendations, brain=brain, stop=ctx.stop,
                              notes=ctx.notes, enforce_kwargs=ctx.enforce_kwargs, max_epochs=ctx.max_epochs)
    return SearchPlan(search_alg=searcher, scheduler=None, num_samples=ctx.settings.max_recommendations)


register(
    AlgorithmSpec(
        name="hybrid",
        description="LLM-guided (recommended): an LLM plans phases (which parameters, which registry "
                    "algorithm -- bayesian, random or grid -- and how many trials); the algorithm sweeps them "
                    "with the rest at the incumbent (audit trail in brain/).",
        build=build_hybrid,
        settings_used=HYBRID_SETTINGS_USED,
        model_based=True,
        extra_requires=("openai",),
        llm_guided=True,
    )
)


def build_autoresearch(ctx: BuildContext) -> SearchPlan:
    from tao_automl.algorithms.llm.autoresearch import AutoResearchSearcher
    from tao_automl.algorithms.llm.brain import BrainLog

    check_llm_settings(ctx.settings, algorithm="autoresearch")
    ws = ctx.workspace
    brain = BrainLog(ws.root, getattr(ws, "_storage_options", None)) if ws is not None else None
    searcher = AutoResearchSearcher(space=ctx.space, metric=ctx.metric, mode=ctx.mode, settings=ctx.settings,
                                    budget=ctx.settings.max_recommendations, brain=brain, stop=ctx.stop,
                                    notes=ctx.notes, enforce_kwargs=ctx.enforce_kwargs)
    return SearchPlan(search_alg=searcher, scheduler=None, num_samples=ctx.settings.max_recommendations)


register(
    AlgorithmSpec(
        name="autoresearch",
        description="LLM-guided keep/discard loop: the LLM proposes changes to the incumbent, one trial at a "
                    "time; a change is kept only when it beats the incumbent by more than the noise margin.",
        build=build_autoresearch,
        settings_used=tuple(k for k in LLM_SETTINGS_USED if k not in ("llm_fallback", "max_concurrent"))
        + ("research_program", "autoresearch_noise_margin", "autoresearch_repeats"),
        model_based=True,
        extra_requires=("openai",),
        llm_guided=True,
    )
)
