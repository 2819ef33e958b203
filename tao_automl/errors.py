"""One flat, documented exception tree for tao_automl.

Every error raised on purpose by this package derives from :class:`AutoMLError`.
Foreign exceptions (``subprocess``, ``docker``, ``kubernetes``, SLURM CLI
failures, ``fsspec``/``s3fs`` I/O errors, ``yaml``/``json`` parse errors) are
mapped into this tree at the edge where they happen, so callers only ever need
``except AutoMLError``.

Messages follow one rule: name the file, the key and the value at fault, and
say what was expected.  Every error is built from those fields --
``SettingsError("unknown setting", file=f, key=k, value=v, expected=e, hint=h)``
-- and :func:`describe` makes the message from them, so the fields and the
text never disagree.  ``X.from_message(text, key=...)`` keeps a ready message
(several problems joined, or a key spelled differently in the text).

Tree::

    AutoMLError
    ├── SkillError              a model skill directory or one of its files is wrong
    ├── SchemaGateError         the AutoML search-space gate failed (schema missing/unparsable)
    ├── SearchSpaceError        a hyperparameter / custom range is invalid for the schema
    ├── SpecError               a spec cannot be built (bad override path, missing data key)
    ├── SettingsError           automl_settings / run() arguments are invalid
    ├── PreflightError          something required before launch is missing
    │   └── CredentialError     a required credential env var is unset (name only)
    ├── PlatformError           a platform backend failed
    │   ├── SubmitError         submission was refused or failed
    │   │   └── TransientSubmitError   submission failed but may succeed on retry
    │   ├── JobNotFoundError    the backend does not know the job handle
    │   └── PlatformUnavailableError   the backend/CLI/client is unavailable
    ├── MetricError             a metric is missing, malformed, NaN/inf or of the wrong type
    ├── CheckpointError         no checkpoint matches the request
    ├── WorkspaceError          the workspace cannot be read/written; nothing to resume
    ├── SearchError             the search could not continue (e.g. shared root cause)
    └── LLMError                an LLM-guided search could not get a valid proposal
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "AutoMLError",
    "SkillError",
    "SchemaGateError",
    "SearchSpaceError",
    "SpecError",
    "SettingsError",
    "PreflightError",
    "CredentialError",
    "PlatformError",
    "SubmitError",
    "TransientSubmitError",
    "JobNotFoundError",
    "PlatformUnavailableError",
    "MetricError",
    "CheckpointError",
    "WorkspaceError",
    "SearchError",
    "LLMError",
    "describe",
]


def describe(
    problem: str,
    *,
    file: Any = None,
    key: Any = None,
    value: Any = ...,
    expected: str | None = None,
    hint: str | None = None,
) -> str:
    """Build a message naming file, key, value and expectation.

    >>> describe("bad bound", file="train.schema.json", key="train.lr", value=-1,
    ...          expected="a number >= 0")
    "bad bound: file 'train.schema.json', key 'train.lr', value -1; expected a number >= 0"
    """
    parts = []
    if file is not None:
        parts.append(f"file '{file}'")
    if key is not None:
        parts.append(f"key '{key}'")
    if value is not ...:
        parts.append(f"value {value!r}")
    msg = problem
    if parts:
        msg += ": " + ", ".join(parts)
    if expected:
        msg += f"; expected {expected}"
    if hint:
        msg += f" ({hint})"
    return msg


class AutoMLError(Exception):
    """Root of every error tao_automl raises on purpose.

    ``AutoMLError(problem, file=, key=, value=, expected=, hint=)``: the
    message is ``describe(problem, ...)`` of those fields (``value`` left out
    when not given; a bare ``problem`` is the whole message).  The fields are
    kept as attributes (``value`` is None when not given) so programs can
    react without parsing text; ``problem`` is the text before them.
    """

    def __init__(
        self,
        problem: str,
        *,
        file: Any = None,
        key: Any = None,
        value: Any = ...,
        expected: str | None = None,
        hint: str | None = None,
    ) -> None:
        message = describe(problem, file=file, key=key, value=value, expected=expected, hint=hint)
        super().__init__(message)
        self.message = message
        self.problem = problem
        self.file = file
        self.key = key
        self.value = None if value is ... else value
        self.expected = expected
        self.hint = hint

    @classmethod
    def from_message(cls, message: str, **fields: Any) -> AutoMLError:
        """The error with ``message`` as its whole text and ``fields``
        (``file``, ``key``, ``value``, ``expected``, ``hint``, or a subclass's
        own) as attributes only: for a message that is not one ``describe``
        of its fields (several problems joined, a key named differently)."""
        err = cls(message, **{k: v for k, v in fields.items() if k not in _FIELDS})
        for name in _FIELDS:
            if name in fields:
                setattr(err, name, fields[name])
        return err

    def __reduce__(self) -> tuple[Any, ...]:  # survives pickling across Ray processes
        return (_rebuild, (type(self), self.message, dict(self.__dict__)))

    def __str__(self) -> str:  # pragma: no cover - trivial
        return self.message


_FIELDS = ("file", "key", "value", "expected", "hint")


def _rebuild(cls: type[AutoMLError], message: str, state: dict[str, Any]) -> AutoMLError:
    """Unpickle: the same class, message and attributes, without calling
    ``__init__`` (a subclass may take other arguments)."""
    err = cls.__new__(cls)
    Exception.__init__(err, message)
    err.__dict__.update(state)
    return err


class SkillError(AutoMLError):
    """A model skill directory or one of its files is missing or malformed."""


class SchemaGateError(AutoMLError):
    """The schema gate failed: ``schemas/<action>.schema.json`` (or, for
    non-TAO-Core models, the spec template) is missing or does not parse.
    The runner never improvises a search space when this is raised."""


class SearchSpaceError(AutoMLError):
    """A requested hyperparameter or custom range is not allowed by the schema."""


class SpecError(AutoMLError):
    """A training spec cannot be built: bad override path, type clash, missing
    mandatory data key, unknown spec_params function."""


class SettingsError(AutoMLError):
    """``automl_settings`` or ``run()`` arguments are invalid (unknown key,
    wrong type, conflicting options, unknown algorithm)."""


class PreflightError(AutoMLError):
    """A launch prerequisite is missing (dataset not readable, no evaluate
    action where one is required, ...)."""


class CredentialError(PreflightError):
    """A required credential environment variable is unset.  Only the *name*
    of the variable ever appears in the message, never a value."""


class PlatformError(AutoMLError):
    """A platform backend failed.  Foreign client errors are mapped here."""


class SubmitError(PlatformError):
    """A job submission was refused or failed permanently."""


class TransientSubmitError(SubmitError):
    """A job submission failed for a reason that may go away (network blip,
    scheduler busy); callers may retry within a bound."""


class JobNotFoundError(PlatformError):
    """The backend does not know the given job handle."""


class PlatformUnavailableError(PlatformError):
    """The backend's CLI, daemon, API server or client package is unavailable."""


class MetricError(AutoMLError):
    """A metric is missing, malformed, NaN/inf, a bool, or of the wrong type."""


class CheckpointError(AutoMLError):
    """No checkpoint matches the request (epoch, step, best, last)."""


class WorkspaceError(AutoMLError):
    """The workspace cannot be read or written, or there is nothing to resume."""


class SearchError(AutoMLError):
    """The search cannot continue, e.g. the first trials all failed with one
    shared root cause."""


class LLMError(AutoMLError):
    """An LLM-guided search (``llm``) could not get a valid configuration from
    its endpoint: the call failed after the retry bound, or the reply stayed
    invalid after one repair prompt.  The message names the endpoint, the
    model and the cause (never the API key); ``endpoint``, ``model`` and
    ``cause`` are kept as attributes."""

    def __init__(self, problem: str, *, endpoint: str | None = None, model: str | None = None,
                 cause: str | None = None, **kwargs: Any) -> None:
        super().__init__(problem, **kwargs)
        self.endpoint = endpoint
        self.model = model
        self.cause = cause
