"""Routing metrics against values computed by hand."""

import pytest

from router_ml.metrics import routing_report

TRUE = ["SIMPLE", "SIMPLE", "MEDIUM", "MEDIUM", "COMPLEX", "COMPLEX"]
PRED = ["SIMPLE", "MEDIUM", "MEDIUM", "SIMPLE", "COMPLEX", "MEDIUM"]


def test_rates_and_confusion():
    r = routing_report(TRUE, PRED)
    assert r["n"] == 6
    assert r["accuracy"] == pytest.approx(3 / 6)
    assert r["overroute_rate"] == pytest.approx(1 / 6)  # SIMPLE -> MEDIUM
    assert r["underroute_rate"] == pytest.approx(2 / 6)  # MEDIUM -> SIMPLE, COMPLEX -> MEDIUM
    assert r["confusion"]["labels"] == ["SIMPLE", "MEDIUM", "COMPLEX"]
    assert r["confusion"]["matrix"] == [[1, 1, 0], [1, 1, 0], [0, 1, 1]]
    assert r["per_tier"]["COMPLEX"] == {"n": 2, "accuracy": 0.5, "underroute_rate": 0.5, "overroute_rate": 0.0}
    assert "cost" not in r


def test_costs_by_hand():
    # two requests of 1,000 input tokens; output 200 (true SIMPLE) and 1,500 (true COMPLEX)
    r = routing_report(["SIMPLE", "COMPLEX"], ["MEDIUM", "COMPLEX"], [1000, 1000])
    c = r["cost"]
    sonnet_simple = (1000 * 3 + 200 * 15) / 1e6  # 0.006
    opus_complex = (1000 * 5 + 1500 * 25) / 1e6  # 0.0425
    haiku_simple = (1000 * 1 + 200 * 5) / 1e6  # 0.002
    sonnet_complex = (1000 * 3 + 1500 * 15) / 1e6  # 0.0255
    opus_simple = (1000 * 5 + 200 * 25) / 1e6  # 0.010
    assert c["routed_usd"] == pytest.approx(sonnet_simple + opus_complex)
    assert c["oracle_usd"] == pytest.approx(haiku_simple + opus_complex)
    assert c["always_opus_usd"] == pytest.approx(opus_simple + opus_complex)
    assert c["always_sonnet_usd"] == pytest.approx(sonnet_simple + sonnet_complex)
    assert c["routed_per_1k_usd"] == pytest.approx(500 * (sonnet_simple + opus_complex))
    assert c["savings_vs_opus"] == pytest.approx(1 - (sonnet_simple + opus_complex) / (opus_simple + opus_complex))


def test_mismatched_lengths_are_rejected():
    with pytest.raises(ValueError, match="2 true labels but 1 predictions"):
        routing_report(["SIMPLE", "MEDIUM"], ["SIMPLE"])
    with pytest.raises(ValueError, match="unknown tier"):
        routing_report(["EASY"], ["SIMPLE"])
