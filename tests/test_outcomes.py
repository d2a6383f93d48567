"""Outcome importers: per-model outcome tables -> tier labels by the cheapest correct rung."""

import csv
import json

import pytest
from typer.testing import CliRunner

from router_ml.cli import app
from router_ml.data import load_rows
from router_ml.errors import DataError
from router_ml.tiers import Tier
from train.outcomes import (
    Ladder,
    cheapest_correct_tier,
    import_outcomes,
    label_outcomes,
    read_long_csv,
    read_outcomes,
    read_wide_csv,
)

LADDER = Ladder(("small", "mid", "big"))
runner = CliRunner()


def write_csv(path, header, rows):
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


@pytest.mark.parametrize(
    "correct, tier",
    [
        ({"small": True, "mid": True, "big": True}, Tier.SIMPLE),
        ({"small": False, "mid": True, "big": False}, Tier.MEDIUM),  # the big model failing does not matter
        ({"small": False, "mid": False, "big": True}, Tier.COMPLEX),
        ({"small": False, "mid": False, "big": False}, None),
        ({"small": True}, Tier.SIMPLE),  # rungs above the first correct one are not needed
    ],
)
def test_cheapest_correct_rung(correct, tier):
    assert cheapest_correct_tier(correct, LADDER) == tier


def test_a_missing_rung_below_the_answer_cannot_be_decided():
    with pytest.raises(KeyError, match="small"):
        cheapest_correct_tier({"mid": True, "big": True}, LADDER)


def test_ladders_need_three_distinct_models():
    assert Ladder.parse(" a, b ,c").models == ("a", "b", "c")
    with pytest.raises(ValueError, match="3 distinct models"):
        Ladder(("a", "a", "b"))
    with pytest.raises(ValueError, match="3 distinct models"):
        Ladder.parse("a,b")


def test_long_format_labels_and_reports_the_unsolved_and_incomplete_apart(tmp_path):
    f = write_csv(
        tmp_path / "long.csv",
        ["id", "prompt", "model", "correct", "cost"],
        [
            ["p1", "easy", "small", "true", "0.001"],
            ["p1", "easy", "mid", "true", "0.01"],
            ["p1", "easy", "big", "1", "0.1"],
            ["p2", "medium", "small", "false", "0.001"],
            ["p2", "medium", "mid", "yes", "0.01"],
            ["p2", "medium", "big", "0", "0.1"],
            ["p3", "hard", "small", "0", "0.002"],
            ["p3", "hard", "mid", "0", "0.02"],
            ["p3", "hard", "big", "1", "0.2"],
            ["p4", "impossible", "small", "0", ""],
            ["p4", "impossible", "mid", "0", ""],
            ["p4", "impossible", "big", "0", ""],
            ["p5", "half-known", "mid", "1", "0.01"],
            ["p5", "half-known", "other-model", "1", "9"],
        ],
    )
    out = label_outcomes(read_long_csv(f), LADDER)
    assert [(r["id"], r["tier"]) for r in out["rows"]] == [("p1", "SIMPLE"), ("p2", "MEDIUM"), ("p3", "COMPLEX")]
    assert out["unsolved"] == ["p4"] and out["incomplete"] == ["p5"]
    p3 = out["rows"][2]
    assert p3["label_source"] == "outcome"
    assert p3["outcome"] == {
        "ladder": ["small", "mid", "big"],
        "correct": {"small": False, "mid": False, "big": True},
        "cost_usd": {"small": 0.002, "mid": 0.02, "big": 0.2},
    }
    kept = label_outcomes(read_long_csv(f), LADDER, unsolved_tier=Tier.SIMPLE)["rows"]
    assert kept[-1]["id"] == "p4" and kept[-1]["tier"] == "SIMPLE" and kept[-1]["outcome"]["unsolved"] is True


def test_long_format_without_ids_groups_by_prompt(tmp_path):
    f = write_csv(
        tmp_path / "l.csv",
        ["prompt", "model", "correct"],
        [["q", "small", "0"], ["q", "mid", "1"], ["r", "small", "1"]],
    )
    outcomes = read_long_csv(f)
    assert [(o.prompt, o.correct) for o in outcomes] == [("q", {"small": False, "mid": True}), ("r", {"small": True})]
    assert [r["tier"] for r in label_outcomes(outcomes, LADDER)["rows"]] == ["MEDIUM", "SIMPLE"]


def test_wide_routerbench_format(tmp_path):
    f = write_csv(
        tmp_path / "x_test.csv",
        [
            "",
            "sample_id",
            "prompt",
            "eval_name",
            "small",
            "mid",
            "big",
            "small|total_cost",
            "mid|total_cost",
            "big|total_cost",
            "small|model_response",
            "oracle_model_to_route_to",
        ],
        [
            ["0", "x.1", "['What is 2+2?']", "arith", "1.0", "1.0", "1.0", "0.0001", "0.001", "0.01", "['4']", "small"],
            [
                "1",
                "x.2",
                "['Part one', 'part two']",
                "arith",
                "0.0",
                "0.0",
                "1.0",
                "0.0002",
                "0.002",
                "0.02",
                "['?']",
                "big",
            ],
        ],
    )
    outcomes = read_wide_csv(f)
    assert [o.id for o in outcomes] == ["x.1", "x.2"]
    assert outcomes[0].prompt == "What is 2+2?" and outcomes[1].prompt == "Part one\n\npart two"
    assert outcomes[1].cost == {"small": 0.0002, "mid": 0.002, "big": 0.02}
    rows = label_outcomes(read_outcomes(f, ladder=LADDER), LADDER)["rows"]
    assert [r["tier"] for r in rows] == ["SIMPLE", "COMPLEX"] and rows[0]["domain"] == "arith"


def test_bad_input_names_the_file_and_line(tmp_path):
    f = write_csv(tmp_path / "bad.csv", ["prompt", "model", "correct"], [["q", "small", "maybe"]])
    with pytest.raises(DataError, match=r"bad\.csv:2: cannot read 'maybe'"):
        read_long_csv(f)
    f = write_csv(tmp_path / "cols.csv", ["prompt", "model"], [["q", "small"]])
    with pytest.raises(DataError, match="missing correct"):
        read_outcomes(f, fmt="long")
    f = write_csv(tmp_path / "wide.csv", ["prompt", "small"], [["q", "1"]])
    with pytest.raises(DataError, match="no score column for model"):
        read_wide_csv(f, ["small", "mid"])
    with pytest.raises(DataError, match="cannot open"):
        read_long_csv(tmp_path / "nope.csv")


def test_import_writes_rows_the_data_loader_reads(tmp_path):
    f = write_csv(
        tmp_path / "l.csv",
        ["id", "prompt", "model", "correct", "cost"],
        [
            ["a", "Translate 'cat'", "small", "1", "0.1"],
            ["a", "Translate 'cat'", "mid", "1", "1"],
            ["a", "Translate 'cat'", "big", "1", "5"],
            ["b", "Prove it", "small", "0", "0.1"],
            ["b", "Prove it", "mid", "0", "1"],
            ["b", "Prove it", "big", "0", "5"],
        ],
    )
    summary = import_outcomes([f], tmp_path / "out" / "labels.jsonl", ladder=LADDER)
    assert summary["written"] == 1 and summary["unsolved"] == 1 and summary["tiers"]["SIMPLE"] == 1
    rows = load_rows(tmp_path / "out" / "labels.jsonl")
    assert rows[0].tier is Tier.SIMPLE and rows[0].raw["label_source"] == "outcome"


def test_cli_import_outcomes(tmp_path):
    f = write_csv(
        tmp_path / "l.csv",
        ["prompt", "model", "correct"],
        [["q", "haiku", "0"], ["q", "sonnet", "1"], ["r", "haiku", "0"], ["r", "sonnet", "0"], ["r", "opus", "0"]],
    )
    out = tmp_path / "labels.jsonl"
    r = runner.invoke(
        app,
        ["data", "import-outcomes", str(f), "--out", str(out), "--ladder", "haiku,sonnet,opus", "--unsolved", "simple"],
        catch_exceptions=False,
    )
    assert r.exit_code == 0, r.output
    assert "wrote 2 of 2 prompts" in r.output and "1 solved by no rung (kept as SIMPLE)" in r.output
    assert [json.loads(line)["tier"] for line in out.read_text().splitlines()] == ["MEDIUM", "SIMPLE"]
    r = runner.invoke(app, ["data", "import-outcomes", str(f), "--out", str(out), "--ladder", "a,b"])
    assert r.exit_code == 1 and "3 distinct models" in r.output and "Traceback" not in r.output
