"""One exception tree for router-ml.

Malformed input is a ``ValueError`` subclass so callers can catch it the usual way; problems with a
model artifact carry the file they concern.
"""

from __future__ import annotations

from pathlib import Path

__all__ = [
    "RouterMLError",
    "InvalidRequestError",
    "DataError",
    "ConfigError",
    "ArtifactError",
    "ArtifactNotFoundError",
    "ArtifactCorruptError",
    "EmbedderMismatchError",
    "NotFittedError",
]


class RouterMLError(Exception):
    """Base class of every error router-ml raises on purpose."""


class InvalidRequestError(RouterMLError, ValueError):
    """A request to route is malformed (wrong type, empty, no user turn, bad content block)."""


class DataError(RouterMLError, ValueError):
    """A data file row is invalid; ``path`` and ``line`` say where."""

    def __init__(self, message: str, *, path: str | Path | None = None, line: int | None = None):
        self.path = str(path) if path is not None else None
        self.line = line
        where = ""
        if self.path is not None:
            where = f"{self.path}:{line}: " if line is not None else f"{self.path}: "
        super().__init__(where + message)


class ConfigError(RouterMLError, ValueError):
    """A configuration value (argument, environment variable or config file) is invalid."""


class ArtifactError(RouterMLError):
    """A model artifact cannot be used; ``path`` names the offending file."""

    def __init__(self, message: str, *, path: str | Path):
        self.path = str(path)
        super().__init__(f"{self.path}: {message}")


class ArtifactNotFoundError(ArtifactError, FileNotFoundError):
    """The model directory or one of its files is missing."""


class ArtifactCorruptError(ArtifactError):
    """A file exists but is unreadable, truncated, or does not match its recorded checksum."""


class EmbedderMismatchError(ArtifactError):
    """The artifact was trained on another embedder (id or dimension) than the one supplied."""


class NotFittedError(RouterMLError, AttributeError):
    """A predictor was used before ``fit``."""


# -- the LLM router and the teacher calls (Messages API) -------------------------------------------
__all__ += ["LLMRouterError", "LLMUnavailableError", "LLMRequestError", "LLMAnswerError"]


class LLMRouterError(RouterMLError):
    """An LLM call gave no usable answer. Routing catches this one class and falls back safely.

    ``model`` is the model asked; ``cost_usd`` what the failed call was billed (non-zero only when
    the API answered, e.g. with an unparsable tier).
    """

    def __init__(self, message: str, *, model: str | None = None, cost_usd: float = 0.0):
        self.model = model
        self.cost_usd = cost_usd
        super().__init__(message)


class LLMUnavailableError(LLMRouterError):
    """Timeout, connection failure, 429, 529 or 5xx: the same call may work later.

    ``status_code`` is the HTTP status (None for timeouts and connection errors); ``retry_after`` the
    seconds the API asked us to wait, when it said.
    """

    def __init__(
        self,
        message: str,
        *,
        model: str | None = None,
        status_code: int | None = None,
        retry_after: float | None = None,
    ):
        self.status_code = status_code
        self.retry_after = retry_after
        super().__init__(message, model=model)


class LLMRequestError(LLMRouterError):
    """The API refused the call (400, 401, 403, 404, 413...): retrying the same call will not help."""

    def __init__(self, message: str, *, model: str | None = None, status_code: int | None = None):
        self.status_code = status_code
        super().__init__(message, model=model)


class LLMAnswerError(LLMRouterError):
    """The model answered, but not with what was asked (no JSON, unknown or missing tier).

    ``answer`` keeps the start of the raw text for the report.
    """

    def __init__(self, message: str, *, model: str | None = None, cost_usd: float = 0.0, answer: str = ""):
        self.answer = answer[:300]
        super().__init__(message, model=model, cost_usd=cost_usd)


# -- the decision log --------------------------------------------------------------------------------
__all__ += ["DecisionLogError", "DecisionNotFoundError"]


class DecisionLogError(RouterMLError):
    """The log file cannot be used (not a database, written by a newer router-ml, locked too long)."""

    def __init__(self, message: str, *, path: str | Path):
        self.path = str(path)
        super().__init__(f"{self.path}: {message}")


class DecisionNotFoundError(RouterMLError, LookupError):
    """``feedback`` or ``record_usage`` named a decision id that is not in the log."""

    def __init__(self, decision_id: str, *, path: str | Path):
        self.decision_id, self.path = decision_id, str(path)
        super().__init__(f"{self.path}: no decision with id {decision_id!r}")
