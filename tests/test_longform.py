"""The very long seed rows (data/seed/long_context.jsonl) stay tied to their hand-written specs."""

import json
import re

import pytest

from router_ml.data import load_rows
from train import longform
from train.datacheck import request_chars


@pytest.fixture(scope="module")
def specs():
    lines = longform.SPECS.read_text(encoding="utf-8").splitlines()
    return {s["id"]: s for s in map(json.loads, filter(str.strip, lines))}


@pytest.fixture(scope="module")
def built():
    return longform.build_rows(longform.SPECS, longform.FRAGMENTS)


def test_committed_file_is_exactly_what_the_specs_generate(built):
    # If this fails, a spec or fragment changed: run `python -m train.longform` and commit the output.
    assert longform.OUT.read_text(encoding="utf-8") == longform.dumps(built)


def test_rows_validate_and_carry_the_spec_labels(specs):
    rows = load_rows(longform.OUT)
    assert [r.id for r in rows] == list(specs)
    for r in rows:
        s = specs[r.id]
        assert str(r.tier) == s["tier"] and r.raw["label_source"] == "author"
        assert (r.raw["lang"], r.raw["domain"]) == (s["lang"], s["domain"])
        assert {"long-context", "very-long", *s["tags"]} <= set(r.tags)
        assert abs(request_chars(r) / s["chars"] - 1) <= 0.05, (r.id, request_chars(r), s["chars"])
        assert s["question"] in r.request.last_user or s["shape"] == "messages" and s["position"] == "before"


def test_sizes_span_50k_to_500k(specs):
    sizes = sorted(s["chars"] for s in specs.values())
    assert 50_000 <= sizes[0] < 60_000 and 450_000 < sizes[-1] <= 500_000
    bands = [sum(lo <= n < hi for n in sizes) for lo, hi in ((50_000, 100_000), (100_000, 250_000), (250_000, 500_001))]
    assert bands[0] >= 12 and bands[1] >= 12 and bands[2] >= 8, bands


def test_hand_labels_respect_the_rubric_length_rules(specs):
    # RUBRIC.md: never below MEDIUM past ~20k tokens (~80k chars); COMPLEX past ~100k tokens.
    for s in specs.values():
        assert not (s["chars"] > 80_000 and s["tier"] == "SIMPLE"), s["id"]
        assert not (s["chars"] >= 400_000 and s["tier"] != "COMPLEX"), s["id"]
    assert {s["tier"] for s in specs.values()} == {"SIMPLE", "MEDIUM", "COMPLEX"}


def test_needles_land_once_inside_the_material(built, specs):
    for row in built:
        text = "\n".join([row.get("system", ""), row.get("prompt", "")] + [m["content"] for m in row.get("messages", [])])
        for needle in specs[row["id"]].get("needles", []):
            # the longest literal stretch (no slots) of the needle is specific to it
            line = max((part for ln in needle.splitlines() if not ln.startswith("@")
                        for part in re.split(r"<<[^<>]*>>|\{n\}", ln)), key=len)
            assert text.count(line) == 1, (row["id"], line)


def test_generator_is_seeded_by_id_and_writes_atomically(tmp_path):
    frags = tmp_path / "fragments"
    frags.mkdir()
    (frags / "_pools.txt").write_text("host: alpha | beta | gamma\n", encoding="utf-8")
    (frags / "logs.txt").write_text(
        "@doc\n# export\n%%%\n@each\n<<host>> app: INFO ok id=<<hex:8>>\n<<host>> app: ERROR boom\n"
        "    at handler.py:12\n", encoding="utf-8")
    spec = {"id": "t-1", "kind": "logs", "chars": 20_000, "tier": "MEDIUM", "lang": "en", "domain": "software",
            "shape": "prompt", "position": "after", "question": "What failed?", "tags": [],
            "needles": ["alpha app: FATAL the needle"]}
    (tmp_path / "specs.ndjson").write_text(json.dumps(spec) + "\n" + json.dumps({**spec, "id": "t-2"}) + "\n")
    out = tmp_path / "out.jsonl"
    longform.main(["--specs", str(tmp_path / "specs.ndjson"), "--fragments", str(frags), "--out", str(out)])
    first = out.read_text(encoding="utf-8")
    longform.main(["--specs", str(tmp_path / "specs.ndjson"), "--fragments", str(frags), "--out", str(out)])
    assert out.read_text(encoding="utf-8") == first and sorted(p.name for p in tmp_path.iterdir()) == [
        "fragments", "out.jsonl", "specs.ndjson"]
    a, b = (json.loads(ln)["prompt"] for ln in first.splitlines())
    assert a != b and abs(len(a) / 20_000 - 1) <= 0.05
    assert a.count("FATAL the needle") == 1 and a.endswith("\n\nWhat failed?")
    assert "ERROR boom\n    at handler.py:12" in a  # indented lines stay with the line they continue
