"""The `router-ml` CLI end to end, with the real embedder and the committed model."""

import json

import pytest
from typer.testing import CliRunner

from router_ml.cli import app

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


def test_route_json_with_the_shipped_model(shipped_model_dir):
    r = invoke("route", "Is 'machine learning' a type of AI?", "--json", "--model-dir", shipped_model_dir)
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert d["source"] == "classifier" and d["tier"] in {"SIMPLE", "MEDIUM", "COMPLEX"}
    assert d["model"].startswith("claude-") and abs(sum(d["probabilities"].values()) - 1) < 1e-6


def test_route_reads_a_messages_request_from_stdin(shipped_model_dir):
    req = {"system": "You are terse.", "messages": [{"role": "user", "content": "Translate 'bonjour' to English"}]}
    r = runner.invoke(app, ["route", "-", "--json", "--model-dir", str(shipped_model_dir)], input=json.dumps(req))
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["source"] == "classifier"


@pytest.mark.parametrize("router", ["ml", "rules"])
def test_evaluate_json_on_a_file_with_messages_lists(router, tiny_data, shipped_model_dir):
    r = invoke("evaluate", "--data", tiny_data / "tiny.jsonl", "--router", router, "--json", "--model-dir", shipped_model_dir)
    assert r.exit_code == 0, r.output
    rep = json.loads(r.stdout)
    assert rep["n"] == 48 and rep["router"] == router
    assert {"accuracy", "overroute_rate", "underroute_rate", "confusion", "cost"} <= set(rep)
    assert sum(map(sum, rep["confusion"]["matrix"])) == 48
    assert rep["accuracy"] + rep["overroute_rate"] + rep["underroute_rate"] == pytest.approx(1.0)


def test_evaluate_human_output(tiny_data):
    r = invoke("evaluate", "--data", tiny_data, "--router", "rules")
    assert r.exit_code == 0 and "confusion (rows: true, columns: routed)" in r.output and "savings" in r.output


def test_train_then_route_with_the_real_embedder(tiny_data, tmp_path):
    out = tmp_path / "model"
    r = invoke("train", "--data", tiny_data, "--out", out)
    assert r.exit_code == 0, r.output
    assert "dev classifier: accuracy" in r.output and "dev      rules" in r.output
    card = json.loads((out / "card.json").read_text())
    # the default backend: a static table distilled from the packaged MiniLM, served without torch
    assert card["embedder"]["id"] == "sentence-transformers/all-MiniLM-L6-v2#static-256" and card["embedder"]["dim"] == 256
    assert card["embedder"]["backend"] == "static" and {"static.npy", "tokenizer.json", "head.npz"} <= set(card["files"]) | {card["head"]["file"]}
    assert card["lexical"]["file"] == "lexical.npz" and "lexical head:" in r.output  # stacked by default on static
    r = invoke("route", "Audit our OAuth flow across three services for token replay", "--model-dir", out)
    assert r.exit_code == 0 and "(confidence" in r.output


def test_errors_are_one_line_and_exit_1(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "x", "tier": "SIMPLE"}\n{"prompt": "y", "tier": "HARD"}\n')
    r = runner.invoke(app, ["evaluate", "--data", str(bad), "--router", "rules"])
    assert r.exit_code == 1 and f"{bad}:2: unknown tier 'HARD'" in r.output and "Traceback" not in r.output
    r = runner.invoke(app, ["route", "hi", "--model-dir", str(tmp_path / "none")])
    assert r.exit_code == 1 and "model directory does not exist" in r.output
    r = runner.invoke(app, ["evaluate", "--data", str(bad), "--router", "magic"])
    assert r.exit_code == 1 and "unknown router 'magic'" in r.output


def test_data_check_reports_composition_and_duplicates(tiny_data):
    r = invoke("data", "check", tiny_data)
    assert r.exit_code == 0, r.output
    assert "rows: 48" in r.output and "problems: none" in r.output
    (tiny_data / "more.jsonl").write_text(json.dumps({"id": "dup", "prompt": "Convert 5 miles to kilometers.", "tier": "SIMPLE"}) + "\n")
    r = runner.invoke(app, ["data", "check", str(tiny_data)])
    assert r.exit_code == 1 and "exact duplicate" in r.output
