"""router-ml: send each LLM request to the cheapest Claude tier that answers it as well as the best model.

>>> from router_ml import Router
>>> Router.load().route("Is 'machine learning' a type of AI?").tier
<Tier.SIMPLE: 0>

Heavy libraries (torch, sentence-transformers) load on first use, not on import.
"""

from .config import Settings, load_settings
from .errors import (
    ArtifactCorruptError,
    ArtifactError,
    ArtifactNotFoundError,
    ConfigError,
    DataError,
    DecisionLogError,
    DecisionNotFoundError,
    EmbedderMismatchError,
    InvalidRequestError,
    LLMAnswerError,
    LLMRequestError,
    LLMRouterError,
    LLMUnavailableError,
    NotFittedError,
    RouterMLError,
)
from .client import AsyncRoutedAnthropic, RoutedAnthropic
from .decision_log import DecisionLog
from .llm_router import LLMClassification, LLMRouter
from .routed import RoutedMessage
from .normalize import NormalizedRequest, normalize
from .predictor import Predictor
from .registry import ModelRegistry
from .router import RouteDecision, Router
from .breaker import CircuitBreaker
from .rules import RuleRouter
from .tiers import Price, Tier, TierConfig

__version__ = "0.1.0"

__all__ = [
    "Router",
    "RouteDecision",
    "Predictor",
    "ModelRegistry",
    "RuleRouter",
    "LLMRouter",
    "LLMClassification",
    "CircuitBreaker",
    "RoutedAnthropic",
    "AsyncRoutedAnthropic",
    "RoutedMessage",
    "DecisionLog",
    "Tier",
    "TierConfig",
    "Price",
    "Settings",
    "load_settings",
    "NormalizedRequest",
    "normalize",
    "RouterMLError",
    "InvalidRequestError",
    "DataError",
    "ConfigError",
    "ArtifactError",
    "ArtifactNotFoundError",
    "ArtifactCorruptError",
    "EmbedderMismatchError",
    "NotFittedError",
    "LLMRouterError",
    "LLMUnavailableError",
    "LLMRequestError",
    "LLMAnswerError",
    "DecisionLogError",
    "DecisionNotFoundError",
]
