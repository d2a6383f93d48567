"""Fit ``router_ml.lexical.LexicalHead`` on token ids, with out-of-fold log-probabilities for stacking.

The main head learns how far to trust the lexical model from its out-of-fold answers on the training
rows (answers on rows it was fitted on would look far too sure). The TF-IDF rows are built by the
serving code's own ``LexicalHead.tfidf``, so training and serving cannot drift apart.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from router_ml.lexical import LexicalHead, ngram_keys

__all__ = ["fit_lexical"]


def _matrix(head: LexicalHead, id_lists: Sequence[Sequence[int]]):
    from scipy import sparse

    row, idx, w = head.tfidf(id_lists)
    return sparse.csr_matrix((w, (row, idx)), shape=(len(id_lists), len(head.keys)))


def fit_lexical(
    id_lists: Sequence[Sequence[int]],
    y: Sequence[int],
    *,
    vocab_size: int,
    min_df: int = 2,
    Cs: Sequence[float] = (1.0, 3.0, 10.0, 30.0, 100.0),
    cv: int = 5,
    seed: int = 0,
) -> tuple[LexicalHead, np.ndarray, float]:
    """Return ``(head, out-of-fold log-probabilities of the rows, C)``.

    Keys seen in fewer than ``min_df`` rows are dropped; idf is scikit-learn's smoothed
    ``ln((1 + n) / (1 + df)) + 1``; C is chosen by stratified ``cv``-fold log loss, then the
    out-of-fold answers come from ``cv`` fits at that C.
    """
    from sklearn.linear_model import LogisticRegression, LogisticRegressionCV
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    y = np.asarray(y)
    if len(id_lists) != len(y):
        raise ValueError(f"{len(id_lists)} token lists but {len(y)} labels")
    doc_keys = [np.unique(ngram_keys(ids, vocab_size)) for ids in id_lists]
    all_keys, df = np.unique(np.concatenate(doc_keys) if doc_keys else np.zeros(0, np.int64), return_counts=True)
    keep = df >= min_df
    keys, df = all_keys[keep], df[keep]
    idf = np.log((1.0 + len(id_lists)) / (1.0 + df)) + 1.0
    n_classes = int(y.max()) + 1
    shell = LexicalHead(keys, idf, np.zeros((len(keys), n_classes)), np.zeros(n_classes), vocab_size)
    X = _matrix(shell, id_lists)
    folds = StratifiedKFold(min(cv, int(np.bincount(y).min())), shuffle=True, random_state=seed)
    search = LogisticRegressionCV(
        Cs=list(Cs), cv=folds, class_weight="balanced", scoring="neg_log_loss",
        l1_ratios=(0.0,), use_legacy_attributes=False, max_iter=5000, random_state=seed,
    ).fit(X, y)
    C = float(np.ravel(search.C_)[0])
    fixed = LogisticRegression(C=C, class_weight="balanced", max_iter=5000, random_state=seed)
    oof = cross_val_predict(fixed, X, y, cv=folds, method="predict_log_proba")
    final = fixed.fit(X, y)
    head = LexicalHead(keys, idf, final.coef_.T, final.intercept_, vocab_size)
    return head, oof, C
