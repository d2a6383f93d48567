"""``router-ml evaluate``: routers side by side, selective prediction, breakdowns, the report.

A tiny Predictor on the hash embedder stands in for the real model; the LLM router talks to the
project's fake Messages API."""

import json

import numpy as np
import pytest
from fake_server import TEST_KEY
from typer.testing import CliRunner

from router_ml import Predictor
from router_ml.cli import app
from router_ml.data import load_rows
from router_ml.errors import ConfigError
from router_ml.eval_metrics import accuracy_coverage, budget_sweep, group_reports, reliability_bins, worst_errors
from router_ml.eval_plots import write_report
from router_ml.evaluate import evaluate, format_report, select_rows
from router_ml.llm_router import LLMRouter
from router_ml.metrics import expected_calibration_error, routing_report

S, M, C = "SIMPLE", "MEDIUM", "COMPLEX"
runner = CliRunner()


# -- metrics against hand-computed values ------------------------------------------------------------
def test_accuracy_coverage_keeps_the_most_confident_rows():
    y = [S, M, C, S]
    probs = np.array([[0.9, 0.1, 0.0], [0.8, 0.2, 0.0], [0.1, 0.2, 0.7], [0.3, 0.6, 0.1]])
    # argmax: S (right), S (under), C (right), M (over); confidences .9 .8 .7 .6
    pts = accuracy_coverage(y, probs, levels=[0.25, 0.5, 0.75, 1.0])
    assert [p["n"] for p in pts] == [1, 2, 3, 4]
    assert [p["threshold"] for p in pts] == [0.9, 0.8, 0.7, 0.6]
    assert [p["accuracy"] for p in pts] == [1.0, 0.5, pytest.approx(2 / 3), 0.5]
    assert [p["underroute_rate"] for p in pts] == [0.0, 0.5, pytest.approx(1 / 3), 0.25]
    # another routed tier for the same ranking: everything COMPLEX never underroutes
    assert all(p["underroute_rate"] == 0 for p in accuracy_coverage(y, probs, [C] * 4, levels=[0.5, 1.0]))


def test_accuracy_coverage_rejects_bad_levels_and_shapes():
    with pytest.raises(ValueError, match="coverage levels"):
        accuracy_coverage([S], np.array([[1.0, 0, 0]]), levels=[1.5])
    with pytest.raises(ValueError, match="probs must be"):
        accuracy_coverage([S, M], np.array([[1.0, 0, 0]]))


def test_reliability_bins_add_up_to_the_ece():
    rng = np.random.default_rng(0)
    probs = rng.dirichlet([1, 1, 1], size=200)
    y = rng.integers(0, 3, size=200)
    bins = reliability_bins(y, probs)
    assert sum(b["n"] for b in bins) == 200
    ece = sum(b["n"] / 200 * abs(b["accuracy"] - b["confidence"]) for b in bins)
    assert ece == pytest.approx(expected_calibration_error(y, probs))


def test_budget_sweep_runs_from_always_complex_to_always_simple():
    y = [S, M, C]
    probs = np.array([[0.6, 0.3, 0.1], [0.2, 0.5, 0.3], [0.1, 0.2, 0.7]])
    tokens = [100, 100, 100]
    sweep = budget_sweep(y, probs, tokens, budgets=[0.0, 0.35, 1.0])
    opus = routing_report(y, [C] * 3, tokens)["cost"]["always_opus_per_1k_usd"]
    assert sweep[0]["accuracy"] == pytest.approx(1 / 3) and sweep[0]["routed_per_1k_usd"] == pytest.approx(opus)
    # budget 0.35: row 0 risk above SIMPLE .4 -> MEDIUM; row 1 risk above MEDIUM .3 -> MEDIUM; row 2 -> COMPLEX
    assert sweep[1]["accuracy"] == pytest.approx(2 / 3) and sweep[1]["underroute_rate"] == 0
    assert sweep[2]["underroute_rate"] == pytest.approx(2 / 3) and sweep[2]["overroute_rate"] == 0


def test_worst_errors_list_underroutes_first_then_the_most_confident():
    y = [C, M, S, C, S]
    pred = [M, S, C, C, M]
    conf = [0.6, 0.9, 0.99, 0.8, 0.7]
    rows = worst_errors(y, pred, conf, describe=lambda i: {"row": i})
    assert [r["row"] for r in rows] == [1, 0, 2, 4]
    assert [r["kind"] for r in rows] == ["underroute", "underroute", "overroute", "overroute"]


def test_group_reports_count_a_row_in_each_of_its_tags():
    keys = [["code", "sql"], ["code"], ["sql", "sql"], ["(none)"]]
    y = [S, M, C, S]
    groups = group_reports(keys, y, {"a": [S, S, C, M]}, [10, 10, 10, 10])
    assert list(groups) == ["code", "sql", "(none)"]
    assert groups["code"]["n"] == 2 and groups["code"]["routers"]["a"]["accuracy"] == 0.5
    assert groups["code"]["routers"]["a"]["underroute_rate"] == 0.5
    assert groups["sql"]["n"] == 2 and groups["sql"]["routers"]["a"]["accuracy"] == 1.0
    assert groups["(none)"]["routers"]["a"]["overroute_rate"] == 1.0


# -- evaluate() on a tiny model -----------------------------------------------------------------------
@pytest.fixture
def split_data(tiny_data):
    """The tiny set with a dev split: every third row of each tier."""
    rows = load_rows(tiny_data)
    dev = [r.id for i, r in enumerate(rows) if i % 3 == 0]
    (tiny_data / "splits.json").write_text(json.dumps({"dev": dev}))
    return tiny_data, set(dev)


@pytest.fixture
def tiny_model(split_data, hash_embedder, tmp_path):
    data, dev = split_data
    train = [r for r in load_rows(data) if r.id not in dev]
    p = Predictor(hash_embedder, cv=2).fit([r.request for r in train], [r.tier for r in train])
    p.save(tmp_path / "model", card={"serving": {"underroute_budget": 0.3, "confidence_threshold": 0.6}})
    return Predictor.load(tmp_path / "model", embedder=hash_embedder)


@pytest.fixture
def llm(fake, settings):
    r = LLMRouter(settings=settings, base_url=fake.base_url, api_key=TEST_KEY, timeout=2.0)
    yield r
    r.close()


def test_a_directory_with_splits_json_is_evaluated_on_its_dev_split(split_data, tmp_path):
    data, dev = split_data
    rows, what, notes = select_rows(data)
    assert {r.id for r in rows} == dev and what.startswith("dev split of") and not notes
    (data / "splits.json").unlink()
    rows, what, notes = select_rows(data)
    assert len(rows) == 48 and "no splits.json" in what and notes
    rows, what, _ = select_rows(data / "tiny.jsonl")
    assert len(rows) == 48 and what.startswith("all 48 rows")


def test_all_routers_side_by_side_on_the_same_rows(split_data, tiny_model, llm, fake, settings):
    data, dev = split_data
    rep = evaluate(data, router="all", predictor=tiny_model, llm=llm, settings=settings)
    assert list(rep["routers"]) == ["rules", "ml", "ml-budget", "chain-safe", "chain-llm", "llm"]
    assert all(r["n"] == len(dev) for r in rep["routers"].values())
    # the top level is the classifier alone, as `--router ml` prints it
    assert rep["router"] == "ml" and rep["accuracy"] == rep["routers"]["ml"]["accuracy"]
    assert {"n", "accuracy", "overroute_rate", "underroute_rate", "confusion", "cost"} <= set(rep)

    probs = tiny_model.predict_proba([r.request for r in load_rows(data) if r.id in dev])
    low = int((probs.max(axis=1) < 0.6).sum())
    assert 0 < low < len(dev)
    fb = rep["routers"]["chain-safe"]["fallback"]
    assert fb["n"] == low and fb["share"] == pytest.approx(low / len(dev)) and fb["sources"]["safe"] == low
    # the chain's totals are its confident rows plus its fallback rows
    acc = rep["routers"]["chain-safe"]["accuracy"] * len(dev)
    parts = fb["confident_rows"]["accuracy"] * fb["confident_rows"]["n"] + fb["fallback_rows"]["accuracy"] * low
    assert acc == pytest.approx(parts)
    llm_fb = rep["routers"]["chain-llm"]["fallback"]
    assert llm_fb["sources"].get("llm") == low and rep["routers"]["chain-llm"]["routing_cost"]["usd"] > 0
    assert fake.calls("messages") == len(dev) + low  # the LLM alone on every row, the chain on the unconfident
    assert rep["routers"]["llm"]["failed_calls"] == 0


def test_classifier_views_calibration_coverage_and_worst_errors(split_data, tiny_model, settings):
    data, dev = split_data
    rep = evaluate(data, predictor=tiny_model, settings=settings, llm=None)
    cl = rep["classifier"]
    assert cl["serving"] == {"underroute_budget": 0.3, "confidence_threshold": 0.6, "source": "model card"}
    assert cl["served"] == "ml-budget" and 0 <= cl["calibration"]["ece"] <= 1
    assert cl["accuracy_coverage"]["argmax"][-1]["accuracy"] == pytest.approx(rep["accuracy"])
    assert cl["budget_sweep"][0]["budget"] == 0 and cl["budget_sweep"][-1]["budget"] == 1
    errors = rep["worst_errors"]["rows"]
    kinds = [e["kind"] for e in errors]
    assert kinds == sorted(kinds, key=lambda k: k != "underroute")
    assert all(e["id"] in dev and set(e["probabilities"]) == {S, M, C} for e in errors)


def test_overrides_and_a_model_without_serving_numbers(split_data, hash_embedder, tiny_model, tmp_path, settings):
    data, _ = split_data
    tiny_model.save(tmp_path / "bare")  # no serving numbers in the card
    bare = Predictor.load(tmp_path / "bare", embedder=hash_embedder)
    rep = evaluate(data, predictor=bare, settings=settings, llm=None)
    assert list(rep["routers"]) == ["ml"] and any("no serving numbers" in n for n in rep["notes"])
    rep = evaluate(data, predictor=bare, settings=settings, llm=None, underroute_budget=1.0, confidence_threshold=1.0)
    assert rep["classifier"]["serving"]["source"] == "arguments"
    assert rep["routers"]["ml-budget"]["per_tier"]["SIMPLE"]["accuracy"] == 1.0  # budget 1: always the cheapest
    assert rep["routers"]["chain-safe"]["fallback"]["share"] == 1.0  # threshold 1: everything falls back


def test_by_tags_and_by_any_key(tmp_path):
    rows = [
        {"prompt": "Translate 'hi' to French", "tier": S, "tags": ["translation", "short"], "lang": "en"},
        {"prompt": "Refactor our payment service across three repos", "tier": C, "tags": ["code"], "lang": "en"},
        {"prompt": "Traduce 'hola' al inglés", "tier": S, "tags": ["translation"], "lang": "es"},
        {"prompt": "Summarize this memo in five bullets", "tier": M},
    ]
    f = tmp_path / "rows.jsonl"
    f.write_text("".join(json.dumps(r) + "\n" for r in rows))
    rep = evaluate(f, router="rules", by=["tags", "lang"], llm=None, min_group=1)
    tags = rep["by"]["tags"]
    assert list(tags) == ["translation", "(none)", "code", "short"]
    assert tags["translation"]["n"] == 2 and tags["code"]["routers"]["rules"]["underroute_rate"] == 1.0
    assert {k: v["n"] for k, v in rep["by"]["lang"].items()} == {"en": 2, "(none)": 1, "es": 1}
    assert "by tags" in format_report(rep)
    rep = evaluate(f, router="rules", by=["tags"], llm=None, min_group=2)  # small groups are left out
    assert list(rep["by"]["tags"]) == ["translation"]


def test_the_llm_router_needs_a_configuration(split_data, tiny_model, monkeypatch, settings):
    data, _ = split_data
    for var in ("ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL", "ANTHROPIC_AUTH_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(ConfigError, match="ANTHROPIC_API_KEY"):
        evaluate(data, router="llm", settings=settings)
    rep = evaluate(data, router="all", predictor=tiny_model, settings=settings)  # "auto": nothing configured
    assert "llm" not in rep["routers"] and any("not evaluated" in n for n in rep["notes"])


# -- the report -----------------------------------------------------------------------------------------
def test_report_writes_markdown_json_and_plots_that_match(split_data, tiny_model, tmp_path, settings):
    data, _ = split_data
    rep = evaluate(data, router="all", predictor=tiny_model, llm=None, settings=settings, by=["tags"])
    md = write_report(rep, tmp_path / "out")
    files = {p.name for p in (tmp_path / "out").iterdir()}
    assert files == {
        "report.md",
        "report.json",
        "confusion.png",
        "reliability.png",
        "accuracy_coverage.png",
        "cost_quality.png",
    }
    for png in files - {"report.md", "report.json"}:
        assert (tmp_path / "out" / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads((tmp_path / "out" / "report.json").read_text())["accuracy"] == rep["accuracy"]
    text = md.read_text()
    assert f"{rep['routers']['chain-safe']['accuracy']:.1%}" in text and "![cost_quality](cost_quality.png)" in text
    assert "| rules |" in text


def test_cli_rules_json_report_and_by_tags(tiny_data, tmp_path):
    out = tmp_path / "rep"
    r = runner.invoke(
        app,
        ["evaluate", "--data", str(tiny_data), "--router", "rules", "--by", "tags", "--json", "--report", str(out)],
        catch_exceptions=False,
    )
    assert r.exit_code == 0, r.output
    rep = json.loads(r.stdout)
    assert {"n", "accuracy", "overroute_rate", "underroute_rate", "confusion", "cost", "routers", "by"} <= set(rep)
    assert (
        list(rep["by"]["tags"]) == ["fixture"] and rep["by"]["tags"]["fixture"]["n"] == 45
    )  # "(none)": 3 rows, under 5
    assert (out / "report.md").is_file() and (out / "confusion.png").is_file()
    assert not (out / "reliability.png").exists()  # no classifier, no calibration plot
