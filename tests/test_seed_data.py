"""The shipped seed set: valid, meets its composition floors, no duplicates, nothing from benchmarks."""

from pathlib import Path

import pytest

from train.benchmarks import find_benchmarks, iter_benchmark_prompts
from train.datacheck import check_data, full_text, near_duplicate_pairs, request_chars
from router_ml.data import load_rows

DATA = Path(__file__).resolve().parent.parent / "data"


@pytest.fixture(scope="module")
def report():
    return check_data(DATA)


@pytest.fixture(scope="module")
def rows():
    return load_rows(DATA)


def test_schema_loads_and_no_duplicates(report):
    assert report["problems"] == []
    assert report["label_sources"] == {"author": {"n": report["n"], "share": 1.0}}


def test_composition_floors(report, rows):
    assert report["n"] >= 3000
    tiers = {k: v["share"] for k, v in report["tiers"].items()}
    assert 0.30 <= tiers["SIMPLE"] <= 0.40 and 0.35 <= tiers["MEDIUM"] <= 0.45 and 0.20 <= tiers["COMPLEX"] <= 0.30
    length = {k: v["share"] for k, v in report["length"].items()}
    assert length["<300"] >= 0.50 and length["300-2000"] >= 0.25 and length[">2000"] >= 0.14
    assert report["very_long_50k_plus"] >= 24
    assert max(request_chars(r) for r in rows) >= 400_000
    assert report["non_english_share"] >= 0.10
    assert len([k for k in report["languages"] if k != "en"]) >= 8
    assert report["multi_turn_share"] >= 0.10
    assert report["with_system"] >= 100 and report["with_tools"] >= 50
    assert report["tags"]["keyword-trap"]["share"] >= 0.25
    assert len(report["domains"]) >= 12


def test_every_row_has_a_unique_id_and_author_label(rows):
    ids = [r.id for r in rows]
    assert len(ids) == len(set(ids))
    assert all(r.raw.get("label_source") == "author" for r in rows)


def test_dev_split_is_fixed_and_stratified(rows):
    from train.splits import load_split

    dev = load_split(DATA)
    assert dev is not None, "data/splits.json is missing"
    ids = {r.id for r in rows}
    assert dev <= ids
    for tier in ("SIMPLE", "MEDIUM", "COMPLEX"):
        n = sum(str(r.tier) == tier for r in rows)
        k = sum(str(r.tier) == tier and r.id in dev for r in rows)
        assert abs(k / n - 0.2) < 0.02


def test_no_overlap_with_the_shared_benchmarks(rows):
    root = find_benchmarks()
    if root is None:
        pytest.skip("../shared/benchmarks is not present")
    bench = [t for _, t in iter_benchmark_prompts(root)]
    assert len(bench) > 10_000  # the folder was actually read
    ours = [full_text(r) for r in rows]
    # no near-duplicate request, and no benchmark prompt pasted inside one of ours
    assert near_duplicate_pairs(ours, others=bench, threshold=0.5) == []
    long_bench = [t for t in bench if len(t.split()) >= 25]
    copied = near_duplicate_pairs(ours, others=long_bench, threshold=0.5, containment=True)
    assert copied == [], [(rows[i].id, long_bench[j][:80], s) for i, j, s in copied[:5]]
