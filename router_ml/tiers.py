"""Tiers, the models they map to, and what each model costs."""

from __future__ import annotations

import enum
import numbers
from dataclasses import dataclass, field
from typing import Mapping

from .errors import ConfigError

__all__ = ["Tier", "Price", "TierConfig", "DEFAULT_MODELS", "DEFAULT_PRICES"]


class Tier(enum.IntEnum):
    """Ordered tiers: comparing them says which is the stronger (and dearer) one."""

    SIMPLE = 0
    MEDIUM = 1
    COMPLEX = 2

    @classmethod
    def parse(cls, value: "Tier | str | int") -> "Tier":
        """Accept a Tier, its name in any case, or its index; raise ``ValueError`` otherwise."""
        if isinstance(value, Tier):
            return value
        if isinstance(value, str):
            try:
                return cls[value.strip().upper()]
            except KeyError:
                raise ValueError(
                    f"unknown tier {value!r}; expected one of {', '.join(t.name for t in cls)}"
                ) from None
        if isinstance(value, numbers.Integral) and not isinstance(value, bool):
            try:
                return cls(int(value))
            except ValueError:
                raise ValueError(f"unknown tier index {value!r}; expected 0, 1 or 2") from None
        raise ValueError(f"unknown tier {value!r} of type {type(value).__name__}")

    def __str__(self) -> str:  # "MEDIUM", not "Tier.MEDIUM", in reports and JSON
        return self.name


@dataclass(frozen=True)
class Price:
    """US dollars per million tokens. Cache prices follow Anthropic's multipliers by default."""

    input: float
    output: float
    cache_write: float | None = None  # default 1.25 x input (5-minute cache)
    cache_read: float | None = None  # default 0.1 x input

    def __post_init__(self) -> None:
        for name in ("input", "output", "cache_write", "cache_read"):
            v = getattr(self, name)
            if v is not None and (not isinstance(v, (int, float)) or v < 0):
                raise ConfigError(f"price {name} must be a non-negative number, got {v!r}")

    def cost(
        self,
        input_tokens: float,
        output_tokens: float,
        cache_write_tokens: float = 0,
        cache_read_tokens: float = 0,
    ) -> float:
        """Dollar cost of one call."""
        cw = self.cache_write if self.cache_write is not None else 1.25 * self.input
        cr = self.cache_read if self.cache_read is not None else 0.1 * self.input
        return (
            input_tokens * self.input
            + output_tokens * self.output
            + cache_write_tokens * cw
            + cache_read_tokens * cr
        ) / 1e6


DEFAULT_MODELS: dict[Tier, str] = {
    Tier.SIMPLE: "claude-haiku-4-5",
    Tier.MEDIUM: "claude-sonnet-4-6",
    Tier.COMPLEX: "claude-opus-4-7",
}

DEFAULT_PRICES: dict[str, Price] = {
    "claude-haiku-4-5": Price(1.0, 5.0),
    "claude-sonnet-4-6": Price(3.0, 15.0),
    "claude-opus-4-7": Price(5.0, 25.0),
}


@dataclass(frozen=True)
class TierConfig:
    """Which model serves each tier, and the price of every model we may call.

    >>> TierConfig().model(Tier.MEDIUM)
    'claude-sonnet-4-6'
    """

    models: Mapping[Tier, str] = field(default_factory=lambda: dict(DEFAULT_MODELS))
    prices: Mapping[str, Price] = field(default_factory=lambda: dict(DEFAULT_PRICES))

    def __post_init__(self) -> None:
        models = {}
        for k, v in dict(self.models).items():
            try:
                tier = Tier.parse(k)
            except ValueError as err:
                raise ConfigError(f"models: {err}") from None
            if not isinstance(v, str) or not v.strip():
                raise ConfigError(f"models: model for {tier.name} must be a non-empty string, got {v!r}")
            models[tier] = v
        missing = [t.name for t in Tier if t not in models]
        if missing:
            raise ConfigError(f"models: no model for tier(s) {', '.join(missing)}")
        prices = {}
        for name, p in dict(self.prices).items():
            if isinstance(p, Mapping):
                try:
                    p = Price(**p)
                except TypeError as err:
                    raise ConfigError(f"prices.{name}: {err}") from None
            elif isinstance(p, (tuple, list)):
                p = Price(*p)
            if not isinstance(p, Price):
                raise ConfigError(f"prices.{name}: expected a Price or a table, got {p!r}")
            prices[name] = p
        unpriced = [m for m in models.values() if m not in prices]
        if unpriced:
            raise ConfigError(f"prices: no price for model(s) {', '.join(unpriced)}")
        object.__setattr__(self, "models", models)
        object.__setattr__(self, "prices", prices)

    def model(self, tier: Tier | str) -> str:
        return self.models[Tier.parse(tier)]

    def price(self, model_or_tier: str | Tier) -> Price:
        """Price of a model name, or of the model serving a tier."""
        if isinstance(model_or_tier, Tier) or model_or_tier in Tier.__members__:
            model_or_tier = self.model(model_or_tier)
        try:
            return self.prices[model_or_tier]
        except KeyError:
            raise ConfigError(f"no price configured for model {model_or_tier!r}") from None

    def cost(self, tier: Tier | str, input_tokens: float, output_tokens: float) -> float:
        """Dollar cost of sending a request of this size to the tier's model."""
        return self.price(Tier.parse(tier)).cost(input_tokens, output_tokens)
