"""Artifact save / load, and every way loading refuses a bad artifact."""

import json

import numpy as np
import pytest

from router_ml import (
    ArtifactCorruptError,
    ArtifactNotFoundError,
    EmbedderMismatchError,
    NotFittedError,
    Predictor,
    Tier,
)
from router_ml.data import load_rows


@pytest.fixture
def trained(tiny_data, hash_embedder, tmp_path):
    rows = load_rows(tiny_data)
    p = Predictor(hash_embedder, cv=3).fit([r.request for r in rows], [r.tier for r in rows])
    out = p.save(tmp_path / "model", card={"training": {"n_rows": len(rows)}})
    return p, out, rows


def test_round_trip_gives_identical_probabilities(trained, hash_embedder):
    p, out, rows = trained
    q = Predictor.load(out, embedder=hash_embedder)
    reqs = [r.request for r in rows]
    np.testing.assert_allclose(p.predict_proba(reqs), q.predict_proba(reqs), rtol=1e-6)
    card = json.loads((out / "card.json").read_text())
    assert card["embedder"] == {"id": "test:hash-64", "dim": 64, "path": None}
    assert card["tiers"] == ["SIMPLE", "MEDIUM", "COMPLEX"] and card["training"]["n_rows"] == 48
    assert {"scikit-learn", "numpy", "python"} <= set(card["versions"]) and card["created_at"]


def test_probabilities_are_in_tier_order_and_sum_to_one(trained):
    p, _, rows = trained
    probs = p.predict_proba([r.request for r in rows[:5]])
    assert probs.shape == (5, 3)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-6)
    assert p.classes_ == list(Tier)


def test_missing_directory_card_and_head(trained, hash_embedder, tmp_path):
    _, out, _ = trained
    with pytest.raises(ArtifactNotFoundError, match="model directory does not exist"):
        Predictor.load(tmp_path / "nowhere", embedder=hash_embedder)
    (out / "head.joblib").unlink()
    with pytest.raises(ArtifactNotFoundError, match="head.joblib: classifier head is missing"):
        Predictor.load(out, embedder=hash_embedder)
    (out / "card.json").unlink()
    with pytest.raises(ArtifactNotFoundError, match="card.json: model card is missing"):
        Predictor.load(out, embedder=hash_embedder)


def test_corrupt_card_and_head(trained, hash_embedder):
    _, out, _ = trained
    head = out / "head.joblib"
    head.write_bytes(head.read_bytes()[:100])  # truncated
    with pytest.raises(ArtifactCorruptError, match="does not match the checksum"):
        Predictor.load(out, embedder=hash_embedder)
    (out / "card.json").write_text("{not json")
    with pytest.raises(ArtifactCorruptError, match="card.json: model card is not valid JSON"):
        Predictor.load(out, embedder=hash_embedder)
    (out / "card.json").write_text('{"format": "something-else/9"}')
    with pytest.raises(ArtifactCorruptError, match="not a router-ml/1 model card"):
        Predictor.load(out, embedder=hash_embedder)


def test_head_that_matches_checksum_but_is_not_a_pickle(trained, hash_embedder):
    _, out, _ = trained
    head = out / "head.joblib"
    head.write_bytes(b"garbage")
    card = json.loads((out / "card.json").read_text())
    from router_ml.artifact import sha256_file

    card["head"]["sha256"] = sha256_file(head)
    (out / "card.json").write_text(json.dumps(card))
    with pytest.raises(ArtifactCorruptError, match="cannot unpickle"):
        Predictor.load(out, embedder=hash_embedder)


def test_other_embedder_is_refused(trained, make_embedder):
    _, out, _ = trained
    with pytest.raises(EmbedderMismatchError, match="trained with embedder 'test:hash-64', got 'test:other'"):
        Predictor.load(out, embedder=make_embedder(64, id="test:other"))
    with pytest.raises(EmbedderMismatchError, match="expects 64-dim embeddings"):
        Predictor.load(out, embedder=make_embedder(32))
    with pytest.raises(EmbedderMismatchError, match="pass that embedder"):
        Predictor.load(out)  # unknown embedder and no path in the card


def test_unfitted_predictor_says_so(hash_embedder):
    with pytest.raises(NotFittedError, match="not fitted"):
        Predictor(hash_embedder).predict(["hi"])


def test_fit_validates_its_input(hash_embedder):
    p = Predictor(hash_embedder, cv=2)
    with pytest.raises(ValueError, match="no example of tier"):
        p.fit(["a", "b", "c", "d"], ["SIMPLE", "SIMPLE", "MEDIUM", "MEDIUM"])
    with pytest.raises(ValueError, match="rows but y has"):
        p.fit_vectors(np.zeros((3, 70)), ["SIMPLE"])
