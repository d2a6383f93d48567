"""``Predictor``: embedder (body) + logistic-regression head, what ``make train`` produces.

The head takes vectors, not text (``fit_vectors`` / ``predict_proba_vectors``), so it can be trained
and tested without loading a language model; ``fit`` / ``predict_proba`` do the embedding first.
"""

from __future__ import annotations

import datetime as _dt
import platform
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .artifact import artifact_file, load_artifact, save_artifact
from .backends import embedder_from_card
from .embedder import Embedder, SentenceTransformerEmbedder, default_embedder
from .errors import ArtifactCorruptError, EmbedderMismatchError, NotFittedError
from .lexical import LexicalHead
from .linear_head import LinearHead
from .normalize import NUMERIC_FEATURES, NormalizedRequest, normalize
from .registry import resolve_model_dir
from .tiers import Tier

__all__ = ["Predictor", "softmax"]

TIER_NAMES = [t.name for t in Tier]
LEXICAL_FILE = "lexical.npz"


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    dists = ("router-ml", "scikit-learn", "numpy", "joblib", "sentence-transformers", "torch", "onnxruntime", "tokenizers")
    for dist in dists:
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    return out


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Row-wise softmax of ``logits / temperature`` (temperature scaling calibrates it)."""
    z = np.asarray(logits, dtype=np.float64) / temperature
    z -= z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def _embedder_spec(emb: Embedder) -> tuple[dict[str, Any], dict[str, Any]]:
    """The card's ``embedder`` entry and the data files to copy in (see ``router_ml.backends``)."""
    artifact_spec = getattr(emb, "artifact_spec", None)
    if callable(artifact_spec):
        return artifact_spec()
    spec = {"id": emb.id, "dim": int(emb.dim), "path": getattr(emb, "path", None)}
    if isinstance(emb, SentenceTransformerEmbedder):
        spec["backend"] = "sentence-transformers"
    return spec, {}


class Predictor:
    """Tier probabilities for requests.

    Parameters
    ----------
    embedder : Embedder, optional
        Text -> vectors; default the packaged all-MiniLM-L6-v2 (384-dim).
    Cs : sequence of float, default (0.01, 0.03, 0.1, 0.3, 1, 3)
        Inverse regularization strengths tried by stratified cross-validation.
    cv : int, default 5
        Folds for choosing C.
    class_weight : "balanced" or None, default "balanced"
    random_state : int, default 0

    Example
    -------
    >>> p = Predictor().fit(["hi", "refactor our monorepo", ...], ["SIMPLE", "COMPLEX", ...])
    >>> p.predict(["Translate 'cat' into German"])
    [<Tier.SIMPLE: 0>]
    """

    def __init__(
        self,
        embedder: Embedder | None = None,
        *,
        Cs: Sequence[float] = (0.01, 0.03, 0.1, 0.3, 1.0, 3.0),
        cv: int = 5,
        class_weight: str | None = "balanced",
        random_state: int = 0,
        batch_size: int = 64,
        progress: bool = False,
    ):
        self.embedder = embedder
        self.Cs = Cs
        self.cv = cv
        self.class_weight = class_weight
        self.random_state = random_state
        self.batch_size = batch_size
        self.progress = progress

    # -- body ------------------------------------------------------------------------------
    def _embedder(self) -> Embedder:
        if self.embedder is None:
            self.embedder = default_embedder()
        return self.embedder

    def featurize(self, requests: Sequence[Any]) -> np.ndarray:
        """Requests -> ``(n, dim + len(NUMERIC_FEATURES))`` float32 rows, plus the lexical head's
        log-probabilities (3 columns) when the model has one."""
        normed = [r if isinstance(r, NormalizedRequest) else normalize(r) for r in requests]
        texts = [r.text for r in normed]
        embedder, lexical = self._embedder(), getattr(self, "lexical_", None)
        if lexical is not None and callable(getattr(embedder, "encode_ids", None)):
            ids = self.token_ids(texts)  # tokenize once for both
            emb, lex = embedder.encode_ids(ids), lexical.log_proba(ids)
        else:
            emb = embedder.encode(texts, batch_size=self.batch_size, progress=self.progress)
            lex = None if lexical is None else lexical.log_proba(self.token_ids(texts))
        num = np.asarray([r.features() for r in normed], dtype=np.float32).reshape(len(normed), -1)
        return np.hstack([emb, num] if lex is None else [emb, num, lex]).astype(np.float32)

    def token_ids(self, texts: Sequence[str]) -> list[list[int]]:
        """The embedder's WordPiece ids of each text (what the lexical head reads)."""
        embedder = self._embedder()
        many = getattr(embedder, "token_ids_many", None)
        if callable(many):
            return many(texts)
        token_ids = getattr(embedder, "token_ids", None)
        if token_ids is None:
            raise EmbedderMismatchError(f"embedder {embedder.id!r} gives no token ids for a lexical head")
        return [token_ids(t) for t in texts]

    # -- head ------------------------------------------------------------------------------
    def fit_vectors(self, X: np.ndarray, y: Sequence[Any]) -> "Predictor":
        """Fit the head on feature rows; ``y`` holds tiers (names, indices or ``Tier``)."""
        from sklearn.linear_model import LogisticRegressionCV
        from sklearn.model_selection import StratifiedKFold
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        X = np.asarray(X, dtype=np.float32)
        if X.ndim != 2 or len(X) == 0:
            raise ValueError(f"X must be a non-empty 2-D array, got shape {X.shape}")
        labels = np.asarray([int(Tier.parse(t)) for t in y])
        if len(labels) != len(X):
            raise ValueError(f"X has {len(X)} rows but y has {len(labels)} labels")
        missing = sorted(set(range(len(Tier))) - set(labels.tolist()))
        if missing:
            raise ValueError(f"training data has no example of tier(s) {[Tier(m).name for m in missing]}")
        if self.cv < 2:
            raise ValueError(f"cv must be at least 2, got {self.cv}")
        folds = min(self.cv, int(np.bincount(labels).min()))
        if folds < 2:
            raise ValueError("every tier needs at least 2 examples to cross-validate C")
        lr = LogisticRegressionCV(
            Cs=list(self.Cs),
            cv=StratifiedKFold(folds, shuffle=True, random_state=self.random_state),
            class_weight=self.class_weight,
            scoring="neg_log_loss",
            l1_ratios=(0.0,),
            use_legacy_attributes=False,
            max_iter=5000,
            random_state=self.random_state,
        )
        self.head_ = make_pipeline(StandardScaler(), lr).fit(X, labels)
        self.C_ = float(np.ravel(lr.C_)[0])
        self.temperature_ = 1.0
        self.n_features_in_ = X.shape[1]
        self.classes_ = [Tier(c) for c in lr.classes_]
        return self

    def fit(self, requests: Sequence[Any], tiers: Sequence[Any]) -> "Predictor":
        return self.fit_vectors(self.featurize(requests), tiers)

    def _check_fitted(self) -> None:
        if not hasattr(self, "head_"):
            raise NotFittedError("this Predictor is not fitted yet; call fit() or Predictor.load()")

    def decision_function_vectors(self, X: np.ndarray) -> np.ndarray:
        """``(n, 3)`` uncalibrated logits."""
        self._check_fitted()
        X = np.asarray(X, dtype=np.float32)
        if X.ndim == 1:
            X = X[None, :]
        if X.shape[1] != self.n_features_in_:
            raise ValueError(f"expected {self.n_features_in_} features per row, got {X.shape[1]}")
        return self.head_.decision_function(X)

    def predict_proba_vectors(self, X: np.ndarray) -> np.ndarray:
        """``(n, 3)`` calibrated probabilities, columns in tier order SIMPLE, MEDIUM, COMPLEX."""
        return softmax(self.decision_function_vectors(X), self.temperature_)

    def predict_proba(self, requests: Sequence[Any]) -> np.ndarray:
        self._check_fitted()
        return self.predict_proba_vectors(self.featurize(requests))

    def predict(self, requests: Sequence[Any]) -> list[Tier]:
        return [Tier(int(i)) for i in self.predict_proba(requests).argmax(axis=1)]

    # -- persistence -----------------------------------------------------------------------
    def save(self, directory: str | Path, *, card: dict[str, Any] | None = None) -> Path:
        """Write the artifact; ``card`` adds training facts (data hash, counts, metrics)."""
        self._check_fitted()
        emb = self._embedder()
        spec, files = _embedder_spec(emb)
        full = dict(card or {})
        full.update(
            embedder=spec,
            tiers=TIER_NAMES,
            numeric_features=list(NUMERIC_FEATURES),
            n_features=int(self.n_features_in_),
            C=self.C_,
            calibration={**full.get("calibration", {}), "temperature": float(self.temperature_)},
            versions=_versions(),
            created_at=full.get("created_at") or _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        )
        head = self.head_
        if files:  # a torch-free backend: store the head as arrays, so serving needs no scikit-learn
            head = LinearHead.from_estimator(head) or head
        lexical = getattr(self, "lexical_", None)
        full.pop("lexical", None)
        if lexical is None:
            return save_artifact(directory, head, full, files=files)
        with tempfile.TemporaryDirectory(prefix="router-ml-lexical-") as tmp:
            lexical.save(Path(tmp) / LEXICAL_FILE)
            full["lexical"] = {"file": LEXICAL_FILE, "features": int(len(lexical.keys)), "ngrams": 2}
            return save_artifact(directory, head, full, files={**files, LEXICAL_FILE: Path(tmp) / LEXICAL_FILE})

    @classmethod
    def load(cls, directory: str | Path, *, embedder: Embedder | None = None) -> "Predictor":
        """Load an artifact; refuse one built for another embedder or feature layout.

        ``directory`` is a model directory or a registry root (its active version is loaded).
        """
        directory = resolve_model_dir(directory)
        head, card = load_artifact(directory)
        spec = card["embedder"]
        card_path = directory / "card.json"
        if card["tiers"] != TIER_NAMES:
            raise ArtifactCorruptError(f"tiers {card['tiers']} differ from {TIER_NAMES}", path=card_path)
        if list(card["numeric_features"]) != list(NUMERIC_FEATURES):
            raise EmbedderMismatchError(
                f"artifact uses numeric features {card['numeric_features']}, this version computes "
                f"{list(NUMERIC_FEATURES)}; retrain with `make train`",
                path=card_path,
            )
        if embedder is None:
            embedder = embedder_from_card(card, directory)
        if embedder.id != spec.get("id"):
            raise EmbedderMismatchError(
                f"artifact was trained with embedder {spec.get('id')!r}, got {embedder.id!r}", path=card_path
            )
        if int(embedder.dim) != int(spec.get("dim", -1)):
            raise EmbedderMismatchError(
                f"artifact expects {spec.get('dim')}-dim embeddings, embedder {embedder.id!r} gives {embedder.dim}",
                path=card_path,
            )
        lexical = _load_lexical(directory, card, embedder)
        n_features = int(card.get("n_features", -1))
        expected = embedder.dim + len(NUMERIC_FEATURES) + (len(lexical.intercept) if lexical is not None else 0)
        if getattr(head, "n_features_in_", n_features) != n_features or n_features != expected:
            raise ArtifactCorruptError("head's input size does not match the card", path=card_path)
        self = cls(embedder)
        self.lexical_ = lexical
        self.head_ = head
        self.C_ = float(card.get("C", 0.0))
        self.temperature_ = float(card.get("calibration", {}).get("temperature", 1.0))
        if not self.temperature_ > 0:
            raise ArtifactCorruptError(f"calibration temperature must be > 0, got {self.temperature_}", path=card_path)
        self.n_features_in_ = n_features
        self.classes_ = list(Tier)
        self.card_ = card
        self.path_ = directory
        return self


def _load_lexical(directory: Path, card: dict[str, Any], embedder: Embedder) -> LexicalHead | None:
    spec = card.get("lexical")
    if spec is None:
        return None
    path = artifact_file(directory, card, spec.get("file") if isinstance(spec, dict) else None)
    if not callable(getattr(embedder, "token_ids", None)):
        raise EmbedderMismatchError(
            f"the model has a lexical head but embedder {embedder.id!r} gives no token ids", path=path
        )
    try:
        return LexicalHead.load(path)
    except (ValueError, OSError) as err:
        raise ArtifactCorruptError(f"cannot read the lexical head ({err})", path=path) from err
