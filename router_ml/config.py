"""Settings, resolved in one documented order: explicit argument, environment, config file, default.

The config file is TOML, found at ``ROUTER_ML_CONFIG`` or ``./router-ml.toml``::

    [models]                      # tier -> model
    SIMPLE = "claude-haiku-4-5"
    MEDIUM = "claude-sonnet-4-6"
    COMPLEX = "claude-opus-4-7"

    [prices."claude-haiku-4-5"]   # dollars per million tokens
    input = 1.0
    output = 5.0

    [router]
    model_dir = "models"          # env ROUTER_ML_MODEL_DIR
    llm_model = "claude-haiku-4-5"  # env ROUTER_ML_LLM_MODEL
    log_path = "router-ml.db"     # env ROUTER_ML_LOG; the decision log (default: none)
    log_privacy = "redact"        # env ROUTER_ML_LOG_PRIVACY: "full", "redact" or "hash"
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Mapping

from .errors import ConfigError
from .tiers import DEFAULT_MODELS, DEFAULT_PRICES, TierConfig

__all__ = ["Settings", "load_settings", "default_model_dir", "LOG_PRIVACY_MODES"]

CONFIG_ENV = "ROUTER_ML_CONFIG"
DEFAULT_CONFIG_FILE = "router-ml.toml"

# setting name -> environment variable that may set it
_ENV = {
    "model_dir": "ROUTER_ML_MODEL_DIR",
    "llm_model": "ROUTER_ML_LLM_MODEL",
    "log_path": "ROUTER_ML_LOG",
    "log_privacy": "ROUTER_ML_LOG_PRIVACY",
}

# How much of a request the decision log keeps (see router_ml.decision_log); "redact" by default so
# that personal data is only stored when someone chose to.
LOG_PRIVACY_MODES = ("full", "redact", "hash")


def _privacy_problem(value: Any) -> str | None:
    if value in LOG_PRIVACY_MODES:
        return None
    return f"log_privacy must be one of {', '.join(LOG_PRIVACY_MODES)}, got {value!r}"


def default_model_dir() -> Path:
    """``models/`` of the source checkout this package runs from, else ``./models``."""
    here = Path(__file__).resolve().parent.parent / "models"
    return here if here.is_dir() else Path.cwd() / "models"


@dataclass(frozen=True)
class Settings:
    """Every tunable of the serving side, validated once."""

    tiers: TierConfig = field(default_factory=TierConfig)
    model_dir: Path = field(default_factory=default_model_dir)
    llm_model: str = DEFAULT_MODELS[min(DEFAULT_MODELS)]
    log_path: Path | None = None  # None: no decision log
    log_privacy: str = "redact"
    source: str = "defaults"  # where the file part came from, for error messages

    def __post_init__(self) -> None:
        problem = _privacy_problem(self.log_privacy)
        if problem:
            raise ConfigError(problem)

    def with_overrides(self, **overrides: Any) -> "Settings":
        """Apply explicit arguments (``None`` means "not given")."""
        given = {k: v for k, v in overrides.items() if v is not None}
        unknown = set(given) - {f.name for f in fields(self)}
        if unknown:
            raise ConfigError(f"unknown setting(s): {', '.join(sorted(unknown))}")
        for name in ("model_dir", "log_path"):
            if name in given:
                given[name] = Path(given[name])
        return replace(self, **given)


def _read_file(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path}: not valid TOML: {err}") from err


def load_settings(
    config_file: str | Path | None = None,
    *,
    env: Mapping[str, str] | None = None,
    **overrides: Any,
) -> Settings:
    """Build settings: ``overrides`` beat the environment, which beats the file, which beats defaults.

    Every invalid field is reported in one ``ConfigError``.
    """
    env = os.environ if env is None else env
    data: dict[str, Any] = {}
    source = "defaults"
    path = config_file or env.get(CONFIG_ENV)
    if path is None and Path(DEFAULT_CONFIG_FILE).is_file():
        path = DEFAULT_CONFIG_FILE
    if path is not None:
        data = _read_file(Path(path))
        source = str(path)

    problems: list[str] = []
    unknown = set(data) - {"models", "prices", "router"}
    if unknown:
        problems.append(f"unknown section(s) {', '.join(sorted(unknown))}")

    models = {**{t.name: m for t, m in DEFAULT_MODELS.items()}, **data.get("models", {})}
    prices = {**DEFAULT_PRICES, **data.get("prices", {})}
    tiers = TierConfig()
    try:
        tiers = TierConfig(models=models, prices=prices)
    except ConfigError as err:
        problems.append(str(err))

    router = dict(data.get("router", {}))
    bad_keys = set(router) - set(_ENV)
    if bad_keys:
        problems.append(f"[router]: unknown key(s) {', '.join(sorted(bad_keys))}")
    for name, var in _ENV.items():
        if env.get(var):
            router[name] = env[var]
    kwargs: dict[str, Any] = {"tiers": tiers, "source": source}
    if "model_dir" in router:
        kwargs["model_dir"] = Path(router["model_dir"])
    if "llm_model" in router:
        if not isinstance(router["llm_model"], str) or not router["llm_model"]:
            problems.append(f"llm_model must be a model name, got {router['llm_model']!r}")
        else:
            kwargs["llm_model"] = router["llm_model"]
    if "log_path" in router:
        if not isinstance(router["log_path"], str) or not router["log_path"]:
            problems.append(f"log_path must be a file path, got {router['log_path']!r}")
        else:
            kwargs["log_path"] = Path(router["log_path"])
    if "log_privacy" in router:
        problem = _privacy_problem(router["log_privacy"])
        if problem:
            problems.append(problem)
        else:
            kwargs["log_privacy"] = router["log_privacy"]
    if problems:
        raise ConfigError(f"{source}: " + "; ".join(problems))
    return Settings(**kwargs).with_overrides(**overrides)
