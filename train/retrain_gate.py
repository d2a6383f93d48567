"""Step 6 of a retrain: may the challenger replace the champion?

Both models are scored on the same rows with the decision they would serve: the cheapest tier within
their card's underroute budget (``router_ml.decision.budget_tier``; argmax when a card has none). The
LLM fallback is left out: it is the same for both, and calling it would cost money.

The challenger is promoted only if, on every evaluation set with at least ``min_rows`` rows (the
frozen evaluation set, the fresh holdout of new labels), its underroute rate does not rise and its
accuracy does not fall by more than a tolerance *plus the noise of the comparison*: ``noise_z``
standard errors of the paired per-row difference (both models score the same rows, so only the rows
where they differ count; one-sided 95% by default). On 30 rows two unlucky rows are noise; on 300
they are not. ``noise_z=0`` leaves the bare tolerances. Underroute comes first because it hurts
users; overroute only costs money, so it is shown, not gated.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Sequence

import numpy as np

from router_ml.data import Row
from router_ml.decision import budget_tier
from router_ml.errors import ConfigError
from router_ml.predictor import Predictor
from router_ml.tiers import Tier

__all__ = ["GatePolicy", "GateResult", "score", "compare", "gate"]


@dataclass(frozen=True)
class GatePolicy:
    """Tolerances, as absolute rates: ``max_underroute_rise`` (default 0.01: one point),
    ``max_accuracy_drop`` (0.02); ``noise_z`` (1.645) standard errors of the paired difference added
    to each; ``min_rows`` (20) below which a set is shown but not gated."""

    max_underroute_rise: float = 0.01
    max_accuracy_drop: float = 0.02
    noise_z: float = 1.645
    min_rows: int = 20

    def __post_init__(self) -> None:
        for name in ("max_underroute_rise", "max_accuracy_drop"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ConfigError(f"{name} must be in [0, 1], got {getattr(self, name)!r}")
        if not 0.0 <= self.noise_z <= 10.0:
            raise ConfigError(f"noise_z must be in [0, 10], got {self.noise_z!r}")
        if self.min_rows < 1:
            raise ConfigError(f"min_rows must be >= 1, got {self.min_rows!r}")


@dataclass
class GateResult:
    promote: bool
    verdict: str  # "promote", "refuse" or "promote (no champion)"
    reasons: list[str]
    sets: dict[str, dict[str, Any]]  # name -> {"n", "gated", "champion": scores | None, "challenger": scores}
    policy: GatePolicy = field(default_factory=GatePolicy)

    def to_dict(self) -> dict[str, Any]:
        return {"promote": self.promote, "verdict": self.verdict, "reasons": self.reasons, "sets": self.sets,
                "policy": asdict(self.policy)}

    def format(self) -> str:
        """The comparison as a small table, champion -> challenger, and the verdict."""
        lines = [f"{'set':<14}{'n':>6}  {'accuracy':<17}{'underroute':<17}{'overroute':<17}"]
        for name, s in self.sets.items():
            cells = []
            for metric in ("accuracy", "underroute_rate", "overroute_rate"):
                new = s["challenger"][metric]
                old = s["champion"][metric] if s["champion"] else None
                cells.append(f"{'-' if old is None else f'{old:.3f}'} -> {new:.3f}".ljust(17))
            note = "" if s["gated"] else "  (not gated: too few rows)"
            lines.append(f"{name:<14}{s['n']:>6}  {''.join(cells)}{note}")
        lines.append(f"verdict: {self.verdict.upper()}" + (f": {'; '.join(self.reasons)}" if self.reasons else ""))
        return "\n".join(lines)


def _decisions(predictor: Predictor, X: np.ndarray) -> np.ndarray:
    """The served classifier tier of each row: the card's underroute budget, else argmax."""
    probs = predictor.predict_proba_vectors(X)
    budget = (getattr(predictor, "card_", None) or {}).get("serving", {}).get("underroute_budget")
    return np.asarray([int(budget_tier(p, budget)) if budget is not None else int(np.argmax(p)) for p in probs])


def _rates(pred: np.ndarray, true: np.ndarray) -> dict[str, Any]:
    n = len(true)
    return {
        "n": n,
        "accuracy": round(float(np.mean(pred == true)), 4) if n else 0.0,
        "underroute_rate": round(float(np.mean(pred < true)), 4) if n else 0.0,
        "overroute_rate": round(float(np.mean(pred > true)), 4) if n else 0.0,
    }


def _noise(z: float, diff: np.ndarray) -> float:
    """``z`` standard errors of the mean of per-row differences (0 when the models never differ)."""
    return float(z * np.std(diff, ddof=1) / np.sqrt(len(diff))) if len(diff) > 1 else 0.0


def score(predictor: Predictor, rows: Sequence[Row], X: np.ndarray | None = None) -> dict[str, Any]:
    """Accuracy, underroute and overroute of the served classifier decision on labeled ``rows``.

    ``X``: the rows' features, when already computed with this predictor's embedder.
    """
    if not rows:
        return _rates(np.zeros(0), np.zeros(0))
    X = predictor.featurize([r.request for r in rows]) if X is None else X
    return _rates(_decisions(predictor, X), np.asarray([int(Tier.parse(r.tier)) for r in rows]))


def compare(
    name: str, true: np.ndarray, old: np.ndarray, new: np.ndarray, policy: GatePolicy
) -> tuple[list[str], dict[str, float]]:
    """Why ``new`` (tiers per row) may not replace ``old`` on one set: reasons (empty: it may), and
    the noise margins that were added to the tolerances."""
    a, b = _rates(old, true), _rates(new, true)
    noise = {"underroute": round(_noise(policy.noise_z, (new < true).astype(float) - (old < true)), 4),
             "accuracy": round(_noise(policy.noise_z, (new == true).astype(float) - (old == true)), 4)}
    reasons = []
    rise = b["underroute_rate"] - a["underroute_rate"]
    if rise > policy.max_underroute_rise + noise["underroute"] + 1e-9:
        reasons.append(f"{name}: underroute {a['underroute_rate']:.3f} -> {b['underroute_rate']:.3f} (+{rise:.3f} > "
                       f"{policy.max_underroute_rise:.3f} tolerance + {noise['underroute']:.3f} noise)")
    drop = a["accuracy"] - b["accuracy"]
    if drop > policy.max_accuracy_drop + noise["accuracy"] + 1e-9:
        reasons.append(f"{name}: accuracy {a['accuracy']:.3f} -> {b['accuracy']:.3f} (-{drop:.3f} > "
                       f"{policy.max_accuracy_drop:.3f} tolerance + {noise['accuracy']:.3f} noise)")
    return reasons, noise


def gate(
    champion: Predictor | None,
    challenger: Predictor,
    sets: dict[str, Sequence[Row]],
    policy: GatePolicy | None = None,
) -> GateResult:
    """Score both models on each named set and decide. Without a champion the challenger is
    promoted (there is nothing to protect), and the table still shows its numbers."""
    policy = policy or GatePolicy()
    features: dict[str, np.ndarray] = {}

    def decide(p: Predictor, name: str, rows: Sequence[Row]) -> np.ndarray:
        key = f"{getattr(p.embedder, 'id', id(p))}\0{name}"  # same embedder id, same features: embed once
        if key not in features:
            features[key] = p.featurize([r.request for r in rows])
        return _decisions(p, features[key])

    out: dict[str, dict[str, Any]] = {}
    reasons: list[str] = []
    for name, rows in sets.items():
        true = np.asarray([int(Tier.parse(r.tier)) for r in rows])
        new = decide(challenger, name, rows) if rows else np.zeros(0, dtype=int)
        old = decide(champion, name, rows) if rows and champion else None
        gated = champion is not None and len(rows) >= policy.min_rows
        out[name] = {"n": len(rows), "gated": gated, "champion": _rates(old, true) if old is not None else None,
                     "challenger": _rates(new, true)}
        if gated:
            why, out[name]["noise"] = compare(name, true, old, new, policy)
            reasons += why
    if champion is None:
        return GateResult(True, "promote (no champion)", [], out, policy)
    if not any(s["gated"] for s in out.values()):
        reasons.append(f"no evaluation set has {policy.min_rows}+ rows: nothing to compare on")
    ok = not reasons
    return GateResult(ok, "promote" if ok else "refuse", reasons, out, policy)
