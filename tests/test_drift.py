"""Drift: recent traffic against the training set, and a plain warning when the fallback rate or the
low-confidence share moves past a threshold."""

from __future__ import annotations

import json
import shutil

import pytest
from traffic import labeled_rows, prompts, write_jsonl
from typer.testing import CliRunner

from router_ml.decision_log import DecisionLog
from router_ml.predictor import Predictor
from router_ml.router import RouteDecision, Router
from router_ml.tiers import Tier
from train.drift import CONFIDENCE_BINS, DriftThresholds, drift_report, format_drift, guess_language
from train.trainer import train_model


@pytest.mark.parametrize("text, lang", [
    ("What is the capital of Portugal and how big is it?", "en"),
    ("Wie kann ich diese Funktion für große Dateien schneller machen?", "de"),
    ("Comment est-ce que je peux trier une liste dans Python pour les débutants ?", "fr"),
    ("¿Cómo puedo ordenar una lista en Python para los principiantes?", "es"),
    ("请帮我把这段代码重构成更清晰的函数", "zh"),
    ("このコードをもっと速くしてください", "ja"),
    ("이 코드를 더 빠르게 만들어 주세요", "ko"),
    ("Как отсортировать список в Python?", "ru"),
    ("كيف يمكنني ترتيب قائمة في بايثون؟", "ar"),
    ("Làm thế nào để sắp xếp một danh sách trong Python?", "vi"),
    (None, "unknown"),
    ("12345 67890", "other"),
])
def test_guess_language(text, lang):
    assert guess_language(text) == lang


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """120 labeled rows (60 of them the dev split) and a model trained on them, built once."""
    from conftest import HashEmbedder

    root = tmp_path_factory.mktemp("drift")
    rows = labeled_rows(120, seed=4, prefix="d-")
    write_jsonl(root / "data" / "rows.jsonl", rows)
    (root / "data" / "splits.json").write_text(json.dumps({"dev": [r["id"] for r in rows[:60]]}))
    train_model(root / "data", root / "models", embedder=HashEmbedder())
    return root, rows


def decision(tier: str, source: str, confidence: float) -> RouteDecision:
    rest = (1 - confidence) / 2
    probs = {t.name: confidence if t.name == tier else rest for t in Tier}
    return RouteDecision(tier=Tier[tier], model="m", confidence=confidence, probabilities=probs, source=source)


def test_traffic_like_the_training_set_raises_no_warning(trained, tmp_path, hash_embedder):
    root, rows = trained
    champion = Predictor.load(root / "models", embedder=hash_embedder)
    with DecisionLog(tmp_path / "routes.db", privacy="full") as log:  # the dev rows themselves, routed
        Router(champion, llm=None, log=log).route_batch([r["prompt"] for r in rows[:60]])
    report = drift_report(tmp_path / "routes.db", data=root / "data", models=root / "models", embedder=hash_embedder)
    assert report["window"]["decisions"] == 60 and report["reference"]["scored"] == 60
    assert report["fallback_rate"]["shift"] == 0.0 and report["low_confidence_share"]["shift"] == 0.0
    assert report["confidence"]["recent"] == report["confidence"]["reference"]
    assert len(report["confidence"]["recent"]) == len(CONFIDENCE_BINS) - 1
    assert report["warnings"] == [] and "no drift past the thresholds" in format_drift(report)


@pytest.fixture
def drifted_log(tmp_path):
    """70% of recent decisions unsure and sent to the LLM fallback, long requests, one hash-only row."""
    path = tmp_path / "routes.db"
    with DecisionLog(path, privacy="full") as log:
        for i, text in enumerate(prompts(60, seed=9)):
            d = decision("COMPLEX", "llm", 0.4) if i % 10 < 7 else decision("SIMPLE", "classifier", 0.9)
            log.record("Please review this whole design document in depth. " * 10 + text, d)
    with DecisionLog(path, privacy="hash") as log:
        log.record("a private request", decision("SIMPLE", "classifier", 0.9))
    return path


def test_a_jump_in_fallbacks_and_unsure_decisions_warns_plainly(trained, drifted_log, hash_embedder):
    root, _ = trained
    report = drift_report(drifted_log, data=root / "data", models=root / "models", embedder=hash_embedder)
    assert report["fallback_rate"]["recent"] == pytest.approx(42 / 61)
    assert report["low_confidence_share"]["recent"] == pytest.approx(42 / 61)
    assert len(report["warnings"]) == 2
    assert report["warnings"][0].startswith("fallback rate is 68.9% in recent traffic against")
    assert report["window"]["without_text"] == 1
    assert report["length_mix"]["recent"][">2000"] == 0 and report["length_mix"]["distance"] > 0.3
    assert report["tier_mix"]["distance"] > 0.2
    text = format_drift(report)
    assert text.count("WARNING: ") == 2 and "confidence histogram" in text


def test_thresholds_and_the_window_decide_what_warns(trained, drifted_log, hash_embedder):
    root, _ = trained
    lax = drift_report(drifted_log, data=root / "data", models=root / "models", embedder=hash_embedder,
                       thresholds=DriftThresholds(max_fallback_shift=0.9, max_low_confidence_shift=0.9))
    assert lax["warnings"] == []
    future = drift_report(drifted_log, data=root / "data", models=root / "models", embedder=hash_embedder,
                          since="2999-01-01T00:00:00Z")
    assert future["window"]["decisions"] == 0 and future["fallback_rate"]["recent"] is None and not future["warnings"]
    format_drift(future)  # an empty window still prints


def test_cli_drift_json_strict_without_scoring(trained, drifted_log, tmp_path):
    from router_ml.cli import app

    root, _ = trained
    models = shutil.copytree(root / "models", tmp_path / "models")  # the reference comes from the card
    args = ["drift", "--logs", str(drifted_log), "--data", str(root / "data"), "--models", str(models), "--no-score"]
    out = CliRunner().invoke(app, [*args, "--json", "--strict"])
    assert out.exit_code == 2, out.output
    report = json.loads(out.output)
    assert report["fallback_rate"]["reference_from"] == "the model card"
    assert report["low_confidence_share"]["reference"] is None and len(report["warnings"]) == 1
    assert CliRunner().invoke(app, args).exit_code == 0
