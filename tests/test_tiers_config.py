"""Tiers are ordered, prices are right, and settings follow one precedence order."""

import pytest

from router_ml import ConfigError, Price, Tier, TierConfig, load_settings


def test_tiers_are_ordered_and_parse_names_and_indices():
    assert Tier.SIMPLE < Tier.MEDIUM < Tier.COMPLEX
    assert Tier.parse("medium") is Tier.MEDIUM
    assert Tier.parse(2) is Tier.COMPLEX
    assert str(Tier.SIMPLE) == "SIMPLE"
    with pytest.raises(ValueError, match="unknown tier 'HARD'"):
        Tier.parse("HARD")
    with pytest.raises(ValueError):
        Tier.parse(True)


def test_default_models_and_prices():
    cfg = TierConfig()
    assert [cfg.model(t) for t in Tier] == ["claude-haiku-4-5", "claude-sonnet-4-6", "claude-opus-4-7"]
    # 1M input + 1M output tokens at list prices
    assert cfg.cost(Tier.SIMPLE, 1e6, 1e6) == pytest.approx(6.0)
    assert cfg.cost(Tier.MEDIUM, 1e6, 1e6) == pytest.approx(18.0)
    assert cfg.cost(Tier.COMPLEX, 1e6, 1e6) == pytest.approx(30.0)


def test_cache_prices_default_to_anthropic_multipliers():
    p = Price(3.0, 15.0)
    assert p.cost(0, 0, cache_write_tokens=1e6) == pytest.approx(3.75)
    assert p.cost(0, 0, cache_read_tokens=1e6) == pytest.approx(0.30)


def test_custom_map_must_be_complete_and_priced():
    cfg = TierConfig(models={"SIMPLE": "a", "MEDIUM": "b", "COMPLEX": "c"}, prices={"a": (1, 2), "b": (2, 3), "c": {"input": 4, "output": 5}})
    assert cfg.model("COMPLEX") == "c" and cfg.price("c").output == 5
    with pytest.raises(ConfigError, match="no model for tier"):
        TierConfig(models={"SIMPLE": "a"})
    with pytest.raises(ConfigError, match="no price for model"):
        TierConfig(models={"SIMPLE": "x", "MEDIUM": "b", "COMPLEX": "c"}, prices={"b": (1, 1), "c": (1, 1)})
    with pytest.raises(ConfigError, match="non-negative"):
        Price(-1, 2)


def test_settings_precedence_argument_env_file_default(tmp_path):
    cfg = tmp_path / "router-ml.toml"
    cfg.write_text(
        '[models]\nSIMPLE = "my-small"\n[prices."my-small"]\ninput = 0.5\noutput = 1.0\n'
        '[router]\nmodel_dir = "from-file"\nllm_model = "file-llm"\n'
    )
    s = load_settings(cfg, env={})
    assert s.tiers.model(Tier.SIMPLE) == "my-small" and s.tiers.model(Tier.MEDIUM) == "claude-sonnet-4-6"
    assert str(s.model_dir) == "from-file" and s.llm_model == "file-llm"
    s = load_settings(cfg, env={"ROUTER_ML_MODEL_DIR": "from-env"})
    assert str(s.model_dir) == "from-env" and s.llm_model == "file-llm"
    s = load_settings(cfg, env={"ROUTER_ML_MODEL_DIR": "from-env"}, model_dir="from-arg")
    assert str(s.model_dir) == "from-arg"
    s = load_settings(env={"ROUTER_ML_CONFIG": str(cfg)})
    assert s.tiers.model(Tier.SIMPLE) == "my-small"
    assert load_settings(env={}).llm_model == "claude-haiku-4-5"


def test_bad_config_file_reports_every_problem(tmp_path):
    cfg = tmp_path / "bad.toml"
    cfg.write_text('[models]\nSIMPLE = "nopriced"\n[router]\ncolour = "blue"\n[extra]\nx = 1\n')
    with pytest.raises(ConfigError) as info:
        load_settings(cfg, env={})
    msg = str(info.value)
    assert str(cfg) in msg and "extra" in msg and "colour" in msg and "nopriced" in msg


def test_config_file_errors_name_the_file(tmp_path):
    bad = tmp_path / "broken.toml"
    bad.write_text("[models\n")
    with pytest.raises(ConfigError, match="broken.toml: not valid TOML"):
        load_settings(bad, env={})
    with pytest.raises(ConfigError, match="config file not found"):
        load_settings(tmp_path / "missing.toml", env={})
    with pytest.raises(ConfigError, match="unknown setting"):
        load_settings(env={}, colour="red")
