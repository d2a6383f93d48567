"""``router-ml bench external``: APGR / CPT on hand-made tables, the RouterBench ladder and the
RouteLLM sets on a small synthetic copy, a clean skip, and one run on the real folder when present."""

import csv
import json

import numpy as np
import pytest
from typer.testing import CliRunner

from router_ml.cli import app
from train.bench_external import format_external, run_external, write_external_report
from train.bench_routellm import TwoModelSet, apgr, cpt, load_routellm, quality_curve, random_router
from train.benchmarks import DEFAULT_BENCHMARKS

runner = CliRunner()
WEAK = [0, 0, 1, 1]
STRONG = [1, 1, 1, 1]  # weak 0.5, strong 1.0; the strong model gains on the first two prompts


def metrics(scores, weak=WEAK, strong=STRONG):
    x, q = quality_curve(scores, weak, strong)
    w, s = float(np.mean(weak)), float(np.mean(strong))
    return apgr(x, q, w, s), cpt(x, q, w, s, 0.5), cpt(x, q, w, s, 0.8)


# -- APGR and CPT against hand-computed values -------------------------------------------------------
def test_perfect_routing():
    # curve (0, .5) (.25, .75) (.5, 1) (.75, 1) (1, 1): area .875 -> APGR (.875 - .5) / .5
    a, c50, c80 = metrics([4, 3, 2, 1])
    assert a == pytest.approx(0.75) and c50 == pytest.approx(0.25) and c80 == pytest.approx(0.4)


def test_inverse_routing():
    # curve (0, .5) (.25, .5) (.5, .5) (.75, .75) (1, 1): area .625
    a, c50, c80 = metrics([1, 2, 3, 4])
    assert a == pytest.approx(0.25) and c50 == pytest.approx(0.75) and c80 == pytest.approx(0.9)
    assert a + metrics([4, 3, 2, 1])[0] == pytest.approx(1.0)  # the two curves mirror each other


def test_equal_scores_move_together_and_give_the_random_line():
    x, q = quality_curve([7, 7, 7, 7], WEAK, STRONG)
    assert x.tolist() == [0.0, 1.0] and q.tolist() == [0.5, 1.0]
    assert metrics([7, 7, 7, 7]) == (pytest.approx(0.5), pytest.approx(0.5), pytest.approx(0.8))
    # ties inside a ranking: the two gaining prompts tie, so the curve jumps over them at once
    assert quality_curve([1, 1, 0, 0], WEAK, STRONG)[0].tolist() == [0.0, 0.5, 1.0]
    assert metrics([1, 1, 0, 0])[0] == pytest.approx(0.75)


def test_a_random_router_is_measured_near_one_half():
    rng = np.random.default_rng(1)
    weak = rng.integers(0, 2, 400).astype(float)
    strong = np.maximum(weak, rng.integers(0, 2, 400))
    data = TwoModelSet("synthetic", ["p"] * 400, weak, strong, 0, "accuracy")
    r = random_router(data, seeds=20)
    assert r["apgr"]["mean"] == pytest.approx(0.5, abs=0.03) and r["apgr"]["sd"] > 0


def test_no_gap_means_no_apgr():
    assert metrics([1, 2], weak=[1, 1], strong=[1, 0]) == (None, None, None)


def test_curve_rejects_mismatched_lengths():
    with pytest.raises(ValueError, match="same non-zero length"):
        quality_curve([1, 2], [0], [1, 1])


# -- a synthetic copy of the benchmark folder ------------------------------------------------------------
class StubPredictor:
    """Fixed tier probabilities per prompt, so every routed choice below is computed by hand."""

    PROBS = {
        "easy": [0.8, 0.1, 0.1],
        "medium": [0.1, 0.8, 0.1],
        "hard": [0.7, 0.2, 0.1],
        "none": [0.1, 0.1, 0.8],
        "q1": [0.1, 0.45, 0.45],
        "q2": [0.5, 0.25, 0.25],
        "q3": [0.8, 0.1, 0.1],
        "q4": [0.9, 0.05, 0.05],
    }
    card_ = {"serving": {"underroute_budget": 0.25}, "created_at": "test", "embedder": {"id": "stub"}}

    def predict_proba(self, prompts):
        return np.asarray([self.PROBS.get(p, [1 / 3, 1 / 3, 1 / 3]) for p in prompts])


MODELS = ["claude-instant-v1", "claude-v1", "gpt-3.5-turbo-1106", "gpt-4-1106-preview"]
COST = {"claude-instant-v1": 0.001, "claude-v1": 0.01, "gpt-3.5-turbo-1106": 0.002, "gpt-4-1106-preview": 0.03}


def write_csv(path, header, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)


def write_jsonl(path, objs):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(o) + "\n" for o in objs))


@pytest.fixture
def bench_root(tmp_path):
    root = tmp_path / "benchmarks"
    header = ["", "sample_id", "prompt", "eval_name", *MODELS, *(m + "|total_cost" for m in MODELS)]
    outcomes = {"easy": [1, 1, 1, 1], "medium": [0, 1, 0, 1], "hard": [0, 0, 0, 1], "none": [0, 0, 0, 0]}
    rows = [
        [i, f"t.{i}", f"['{p}']", "toy", *(float(v) for v in o), *COST.values()]
        for i, (p, o) in enumerate(outcomes.items())
    ]
    rows.append([9, "t.9", "['gap']", "toy", "", 1.0, 1.0, 1.0, *COST.values()])  # a missing score
    write_csv(root / "routerbench" / "toy_test.csv", header, rows)
    write_csv(root / "routerbench" / "toy_train.csv", header, rows[:1])  # never read
    write_csv(
        root / "routellm" / "mmlu" / "outcomes.csv",
        ["subject", "prompt", "mixtral_8x7b_correct", "gpt4_1106_correct"],
        [
            ["s", "q1", "False", "True"],
            ["s", "q2", "True", "True"],
            ["s", "q3", "False", "True"],
            ["s", "q4", "True", "False"],
            ["s", "q5", "False", "True"],
        ],
    )
    write_jsonl(root / "routellm" / "mmlu" / "contaminated_prompts.jsonl", [{"train_prompt": "x", "eval_prompt": "q5"}])
    write_csv(
        root / "routellm" / "gsm8k" / "gsm8k_responses.csv",
        ["prompt", "mistralai/Mixtral-8x7B-Instruct-v0.1", "gpt-4-1106-preview"],
        [["g1", "False", "True"], ["g2", "True", "True"]],
    )
    mt = root / "routellm" / "mt_bench"
    write_jsonl(
        mt / "question.jsonl",
        [
            {"question_id": 1, "turns": ["m1", "m1b"]},
            {"question_id": 2, "turns": ["m2", "m2b"]},
            {"question_id": 3, "turns": ["m3", "leaked"]},
        ],
    )
    judgements = []
    for qid, weak, strong in ((1, (6, 8), (9, 9)), (2, (8, 8), (8, 10)), (3, (1, 1), (10, 10))):
        for turn in (0, 1):
            judgements.append(
                {
                    "question_id": qid,
                    "model": "mistralai/Mixtral-8x7B-Instruct-v0.1",
                    "turn": turn + 1,
                    "score": weak[turn],
                }
            )
            judgements.append(
                {"question_id": qid, "model": "gpt-4-1106-preview", "turn": turn + 1, "score": strong[turn]}
            )
    write_jsonl(mt / "judgements.jsonl", judgements)
    write_jsonl(mt / "contaminated_prompts.jsonl", [{"train_prompt": "x", "eval_prompt": "leaked"}])
    return root


def test_routerbench_ladder_by_hand(bench_root):
    rep = run_external(bench_root, predictor=StubPredictor(), parts=["routerbench"])
    lad = rep["routerbench"]["ladders"]["claude-v1"]
    assert lad["n"] == 4 and lad["missing_outcome"] == 1 and lad["unsolved"] == 1
    assert lad["oracle_tiers"] == {"SIMPLE": 1, "MEDIUM": 1, "COMPLEX": 1}
    # oracle: easy -> instant, medium -> claude-v1, hard -> gpt-4, none -> instant (cheapest)
    assert lad["oracle"]["accuracy"] == 0.75 and lad["oracle"]["cost_usd"] == pytest.approx(0.042)
    assert lad["single"]["gpt-4-1106-preview"] == {
        "accuracy": 0.75,
        "cost_usd": pytest.approx(0.12),
        "cost_per_1k_usd": pytest.approx(30.0),
        "share": {"SIMPLE": 0.0, "MEDIUM": 0.0, "COMPLEX": 1.0},
    }
    ml = lad["routers"]["ml"]  # argmax: S, M, S, C
    assert ml["accuracy"] == 0.5 and ml["cost_usd"] == pytest.approx(0.042)
    assert ml["vs_oracle"]["accuracy"] == pytest.approx(2 / 3) and ml["vs_oracle"]["underroute_rate"] == pytest.approx(
        1 / 3
    )
    budget = lad["routers"]["ml-budget"]  # budget .25: S, M, M, C
    assert budget["accuracy"] == 0.5 and budget["cost_usd"] == pytest.approx(0.051)
    assert lad["curve"][0]["cost_usd"] == pytest.approx(0.12) and lad["curve"][-1]["accuracy"] == 0.25
    gpt = rep["routerbench"]["ladders"]["gpt-3.5"]
    assert gpt["oracle_tiers"] == {"SIMPLE": 1, "MEDIUM": 0, "COMPLEX": 2}  # gpt-3.5 fails "medium"
    assert rep["routerbench"]["files"] == ["toy_test.csv"]


def test_routellm_sets_by_hand(bench_root):
    rep = run_external(bench_root, predictor=StubPredictor(), parts=["routellm"])["routellm"]
    mmlu = rep["mmlu"]
    assert mmlu["n"] == 4 and mmlu["dropped_contaminated"] == 1
    assert mmlu["weak"]["quality"] == 0.5 and mmlu["strong"]["quality"] == 0.75
    # P(not SIMPLE) .9, .5, .2, .1 -> gains +1, 0, +1, -1: curve .5 .75 .75 1 .75, area .78125
    ml = mmlu["routers"]["ml"]
    assert (
        ml["apgr"] == pytest.approx(1.125) and ml["cpt50"] == pytest.approx(0.125) and ml["cpt80"] == pytest.approx(0.2)
    )
    assert mmlu["random"]["apgr"]["mean"] is not None
    mt = rep["mt_bench"]
    assert mt["n"] == 2 and mt["dropped_contaminated"] == 1
    assert mt["weak"]["quality"] == 7.5 and mt["strong"]["quality"] == 9.0 and mt["quality"] == "judge score"
    assert rep["gsm8k"]["n"] == 2


def test_report_files_on_the_synthetic_copy(bench_root, tmp_path):
    rep = run_external(bench_root, predictor=StubPredictor())
    md = write_external_report(rep, tmp_path / "out")
    assert {p.name for p in (tmp_path / "out").iterdir()} == {
        "external.md",
        "external.json",
        "routerbench.png",
        "routellm.png",
    }
    assert (tmp_path / "out" / "routellm.png").read_bytes()[:4] == b"\x89PNG"
    text = md.read_text()
    assert "| router: ml | 50.0% |" in text and "1.125" in text
    assert "APGR" in format_external(rep)


def test_skips_cleanly_when_the_folder_is_absent(tmp_path):
    assert run_external(tmp_path / "nowhere", predictor=StubPredictor()) is None
    r = runner.invoke(app, ["bench", "external", "--benchmarks", str(tmp_path / "nowhere")], catch_exceptions=False)
    assert r.exit_code == 0 and "skipped: no benchmark folder" in r.output
    r = runner.invoke(app, ["bench", "external", "--benchmarks", str(tmp_path / "nowhere"), "--json"])
    assert r.exit_code == 0 and "skipped" in json.loads(r.stdout)


def test_unknown_parts_are_refused(bench_root):
    with pytest.raises(ValueError, match="unknown part"):
        run_external(bench_root, predictor=StubPredictor(), parts=["arena"])


# -- the real folder, when this machine has it --------------------------------------------------------
@pytest.mark.skipif(not DEFAULT_BENCHMARKS.is_dir(), reason="../shared/benchmarks is not on this machine")
def test_the_real_benchmarks_load_with_the_documented_sizes():
    rep = run_external(DEFAULT_BENCHMARKS, predictor=StubPredictor(), parts=["routerbench"])
    for lad in rep["routerbench"]["ladders"].values():
        assert lad["n"] + lad["missing_outcome"] == 953  # the *_test.csv files
        assert lad["oracle"]["accuracy"] >= max(s["accuracy"] for s in lad["single"].values())
        assert lad["oracle"]["cost_usd"] <= lad["single"]["gpt-4-1106-preview"]["cost_usd"]
    sets = {s.name: s for s in load_routellm(DEFAULT_BENCHMARKS / "routellm")}
    assert {k: (s.dropped, len(s.prompts)) for k, s in sets.items()} == {
        "mmlu": (5, 14037),
        "gsm8k": (12, 1307),
        "mt_bench": (8, 72),
    }
    assert random_router(sets["gsm8k"], seeds=10)["apgr"]["mean"] == pytest.approx(0.5, abs=0.05)
    assert all(s.strong.mean() > s.weak.mean() for s in sets.values())
