"""Data files: validation with line numbers, the split, and hashing."""

import json

import pytest

from router_ml import DataError, Tier
from router_ml.data import load_rows, rows_sha256
from train.splits import split_rows, stratified_dev_ids, write_split


def _write(path, lines):
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_loads_prompts_and_messages_and_keeps_extra_keys(tiny_data):
    rows = load_rows(tiny_data)
    assert len(rows) == 48
    conv = next(r for r in rows if r.id == "t-conv2")
    assert conv.tier is Tier.COMPLEX and conv.request.has_system and conv.request.n_turns == 3
    assert rows[0].raw["tags"] == ["fixture"] and rows[0].where.endswith("tiny.jsonl:1")


@pytest.mark.parametrize(
    "line, message",
    [
        ('{"prompt": "hi", "tier": "SIMPLE"', "invalid JSON"),
        ('["prompt"]', "expected a JSON object"),
        ('{"text": "hi", "tier": "SIMPLE"}', "needs 'prompt' or 'messages'"),
        ('{"prompt": "hi", "tier": "EASY"}', "unknown tier 'EASY'"),
        ('{"prompt": "hi"}', "no 'tier' label"),
        ('{"prompt": "", "tier": "SIMPLE"}', "empty"),
        ('{"messages": [{"role": "bot", "content": "x"}], "tier": "SIMPLE"}', r"messages\[0\].role"),
    ],
)
def test_bad_rows_name_file_and_line(tmp_path, line, message):
    f = _write(tmp_path / "d.jsonl", ['{"prompt": "fine", "tier": "SIMPLE"}', "", line])
    with pytest.raises(DataError, match=message) as info:
        load_rows(f)
    assert info.value.line == 3 and str(info.value).startswith(f"{f}:3: ")


def test_unlabeled_rows_allowed_when_asked(tmp_path):
    f = _write(tmp_path / "u.jsonl", ['{"prompt": "hi"}'])
    assert load_rows(f, require_tier=False)[0].tier is None


def test_missing_path_and_empty_dir(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        load_rows(tmp_path / "nope.jsonl")
    with pytest.raises(DataError, match="no \\*.jsonl files"):
        load_rows(tmp_path)


def test_stratified_split_is_reproducible_and_keeps_tier_shares(tiny_data):
    rows = load_rows(tiny_data)
    a = stratified_dev_ids(rows, dev_fraction=0.2, seed=0)
    assert a == stratified_dev_ids(rows, dev_fraction=0.2, seed=0)
    assert a != stratified_dev_ids(rows, dev_fraction=0.2, seed=1)
    dev_tiers = [r.tier for r in rows if r.id in set(a)]
    for t in Tier:
        assert dev_tiers.count(t) == round(sum(r.tier is t for r in rows) * 0.2)


def test_committed_split_file_wins(tiny_data):
    rows = load_rows(tiny_data)
    write_split(tiny_data, ["t-s00", "t-m00", "t-c00"])
    train, dev = split_rows(rows, tiny_data)
    assert sorted(r.id for r in dev) == ["t-c00", "t-m00", "t-s00"] and len(train) == 45
    (tiny_data / "splits.json").write_text("{oops")
    with pytest.raises(DataError, match="not a valid split file"):
        split_rows(rows, tiny_data)


def test_duplicate_ids_refused(tmp_path):
    f = _write(tmp_path / "d.jsonl", [json.dumps({"id": "a", "prompt": p, "tier": t}) for p, t in (("x", "SIMPLE"), ("y", "MEDIUM"))])
    with pytest.raises(DataError, match="duplicate row id 'a'"):
        split_rows(load_rows(f), f)


def test_hash_ignores_order_and_metadata_but_not_labels(tmp_path):
    a = _write(tmp_path / "a.jsonl", ['{"prompt": "x", "tier": "SIMPLE", "id": 1}', '{"prompt": "y", "tier": "MEDIUM"}'])
    b = _write(tmp_path / "b.jsonl", ['{"prompt": "y", "tier": "MEDIUM", "tags": ["t"]}', '{"prompt": "x", "tier": "SIMPLE"}'])
    c = _write(tmp_path / "c.jsonl", ['{"prompt": "y", "tier": "COMPLEX"}', '{"prompt": "x", "tier": "SIMPLE"}'])
    assert rows_sha256(load_rows(a)) == rows_sha256(load_rows(b)) != rows_sha256(load_rows(c))
