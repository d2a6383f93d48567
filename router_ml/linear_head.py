"""``LinearHead``: the fitted scaler + logistic regression as four numpy arrays.

Why: serving needs only ``((x - mean) / scale) @ coef.T + intercept``. Importing scikit-learn (and
scipy) to compute that costs about a second at start-up and ~150 MB on disk, and unpickling runs
code; the arrays load with ``np.load(allow_pickle=False)``. Training keeps scikit-learn.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["LinearHead"]

_KEYS = ("mean", "scale", "coef", "intercept")


class LinearHead:
    """``decision_function(X) -> (n, n_classes)`` logits of a standardized linear model.

    Parameters
    ----------
    mean, scale : ``(n_features,)`` arrays (``StandardScaler.mean_`` / ``scale_``).
    coef : ``(n_classes, n_features)``; intercept : ``(n_classes,)``.
    """

    def __init__(self, mean: np.ndarray, scale: np.ndarray, coef: np.ndarray, intercept: np.ndarray):
        self.mean = np.asarray(mean, dtype=np.float64)
        self.scale = np.asarray(scale, dtype=np.float64)
        self.coef = np.asarray(coef, dtype=np.float64)
        self.intercept = np.asarray(intercept, dtype=np.float64)
        n = self.coef.shape[-1] if self.coef.ndim == 2 else -1
        if self.mean.shape != (n,) or self.scale.shape != (n,) or self.intercept.shape != (len(self.coef),):
            raise ValueError(
                f"inconsistent linear head: mean {self.mean.shape}, scale {self.scale.shape}, "
                f"coef {self.coef.shape}, intercept {self.intercept.shape}"
            )
        if not np.all(np.isfinite(self.scale)) or np.any(self.scale == 0):
            raise ValueError("linear head scale must be finite and non-zero")
        # Folded once: W' = coef / scale, b' = b - W' @ mean, so a call is one matrix product.
        self._w = (self.coef / self.scale).T.copy()
        self._b = self.intercept - self.mean @ self._w
        self.n_features_in_ = n

    @classmethod
    def from_estimator(cls, est: Any) -> "LinearHead | None":
        """From a fitted ``make_pipeline(StandardScaler(), LogisticRegression[CV](...))``; None if not that shape."""
        steps = getattr(est, "steps", None)
        if not steps or len(steps) != 2:
            return None
        scaler, lr = steps[0][1], steps[1][1]
        if not all(hasattr(scaler, a) for a in ("mean_", "scale_")) or not hasattr(lr, "coef_"):
            return None
        coef = np.atleast_2d(lr.coef_)
        if coef.shape[0] < 3 or list(getattr(lr, "classes_", [])) != list(range(coef.shape[0])):
            return None  # binary models keep one row of coefficients; we always have three tiers
        return cls(scaler.mean_, scaler.scale_, coef, np.ravel(lr.intercept_))

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, dtype=np.float64)
        if X.ndim == 1:
            X = X[None, :]
        return X @ self._w + self._b

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {"mean": self.mean, "scale": self.scale, "coef": self.coef, "intercept": self.intercept}

    @classmethod
    def from_arrays(cls, arrays: Any) -> "LinearHead":
        missing = [k for k in _KEYS if k not in arrays]
        if missing:
            raise ValueError(f"linear head lacks arrays {missing}")
        return cls(*(arrays[k] for k in _KEYS))
