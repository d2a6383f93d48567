"""``router-ml drift``: is recent traffic still like the data the model was trained on?

Recent decisions from the log are set against the training set: tier mix (routed tiers against
labels), confidence histogram, fallback rate (decisions below the confidence threshold, sent to the
LLM router or the safe tier), length mix and language mix. The reference confidences come from
scoring a sample of the training set's dev rows with the active model, so they are comparable with
what the log recorded. A plain warning is printed when the fallback rate or the low-confidence share
moves more than a threshold away from the reference: that is when the classifier has stopped
knowing the traffic, and a retrain pays.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from router_ml.config import Settings, load_settings
from router_ml.data import Row, load_rows
from router_ml.embedder import Embedder
from router_ml.errors import ArtifactError, ConfigError
from router_ml.registry import ModelRegistry
from router_ml.tiers import Tier

from .datacheck import LENGTH_BUCKETS, length_bucket
from .retrain_log import parse_since, read_log
from .splits import load_split

__all__ = ["DriftThresholds", "drift_report", "format_drift", "guess_language", "CONFIDENCE_BINS"]

CONFIDENCE_BINS = (0.0, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0001)  # a top probability of 3 tiers is >= 1/3
_MODEL_SOURCES = ("classifier", "llm", "safe")  # decisions the classifier took part in
_FALLBACK_SOURCES = ("llm", "safe")


@dataclass(frozen=True)
class DriftThresholds:
    """``low_confidence`` (0.6): a decision below it is unsure; ``max_fallback_shift`` and
    ``max_low_confidence_shift`` (0.10 each, absolute): the moves that raise a warning."""

    low_confidence: float = 0.6
    max_fallback_shift: float = 0.10
    max_low_confidence_shift: float = 0.10

    def __post_init__(self) -> None:
        for name in ("low_confidence", "max_fallback_shift", "max_low_confidence_shift"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ConfigError(f"{name} must be in [0, 1], got {getattr(self, name)!r}")


# -- language ------------------------------------------------------------------------------------
_SCRIPTS = (  # (language, character class): a script that is a fifth of the letters decides
    ("ko", "\uac00-\ud7af\u1100-\u11ff"), ("ja", "\u3040-\u30ff"), ("zh", "\u4e00-\u9fff"),
    ("ru", "\u0400-\u04ff"), ("ar", "\u0600-\u06ff"), ("hi", "\u0900-\u097f"), ("el", "\u0370-\u03ff"),
    ("he", "\u0590-\u05ff"), ("th", "\u0e00-\u0e7f"),
)
_SCRIPT_RES = [(lang, re.compile(f"[{chars}]")) for lang, chars in _SCRIPTS]
_LETTER = re.compile(r"[^\W\d_]", re.UNICODE)
_WORDS = re.compile(r"[^\W\d_]+", re.UNICODE)
_STOPWORDS = {
    "en": "the and is to of in that it for what how with this you are can",
    "es": "el la de que y en los las por para una es con cómo qué del",
    "fr": "le la les de des et est que pour une dans qui pas vous comment du",
    "de": "der die das und ist nicht ein eine mit für wie ich zu auf den",
    "it": "il la che di è per una non con come sono del della gli questo",
    "pt": "o a de que e do da em um uma para com não como os você",
    "nl": "de het een en van is dat niet voor met hoe op zijn ik wat",
    "pl": "i w nie na się z do jest to że jak czy dla co",
    "tr": "ve bir bu için ile ne nasıl mi değil çok olan gibi var",
    "vi": "và của là có không một các cho những được trong như này với tôi",
}
_STOP = {lang: set(words.split()) for lang, words in _STOPWORDS.items()}
_MARKS = {"vi": "ăâđêôơưạảấầẩẫậắằẳẵặẹẻẽếềểễệỉịọỏốồổỗộớờởỡợụủứừửữựỳỵỷỹ", "tr": "ıışğ", "pl": "łąęśżźćń",
          "de": "ßäöü", "es": "ñ¿¡", "pt": "ãõ", "fr": "çèêëœ"}


def guess_language(text: str | None) -> str:
    """A two-letter guess from the script, then stopwords and letters: "en", "zh", ..., "other",
    or "unknown" without text. Rough on purpose: drift compares mixes, both measured the same way."""
    if not text:
        return "unknown"
    letters = _LETTER.findall(text[:2000])
    if not letters:
        return "other"
    joined = "".join(letters)
    for lang, pattern in _SCRIPT_RES:
        if len(pattern.findall(joined)) >= 0.2 * len(letters):
            return lang
    words = [w.lower() for w in _WORDS.findall(text[:2000])]
    scores = Counter({lang: sum(w in stop for w in words) for lang, stop in _STOP.items()})
    lower = joined.lower()
    for lang, marks in _MARKS.items():
        scores[lang] += 2 * sum(lower.count(m) for m in marks)
    lang, best = scores.most_common(1)[0]
    return lang if best >= 2 else "other"


# -- the report ------------------------------------------------------------------------------------
def _shares(values: Iterable[str], keys: Sequence[str] | None = None) -> dict[str, float]:
    counts = Counter(values)
    n = sum(counts.values())
    keys = list(keys) if keys is not None else sorted(counts, key=lambda k: -counts[k])
    return {k: round(counts.get(k, 0) / n, 4) if n else 0.0 for k in keys}


def _tvd(a: dict[str, float], b: dict[str, float]) -> float:
    """Total variation distance: half the summed absolute differences (0 same, 1 disjoint)."""
    return round(0.5 * sum(abs(a.get(k, 0.0) - b.get(k, 0.0)) for k in set(a) | set(b)), 4)


def _histogram(conf: Sequence[float]) -> list[float]:
    if not len(conf):
        return [0.0] * (len(CONFIDENCE_BINS) - 1)
    counts, _ = np.histogram(np.asarray(conf, dtype=float), bins=CONFIDENCE_BINS)
    return [round(float(c) / len(conf), 4) for c in counts]


def _reference_confidence(
    model_dir: Path, rows: Sequence[Row], embedder: Embedder | None
) -> tuple[list[float], float | None]:
    """The active model's top probabilities on ``rows``, and its confidence threshold."""
    from router_ml.artifact import load_card
    from router_ml.predictor import Predictor

    same = embedder is not None and load_card(model_dir)["embedder"].get("id") == embedder.id
    predictor = Predictor.load(model_dir, embedder=embedder if same else None)
    probs = predictor.predict_proba([r.request for r in rows])
    return [float(p) for p in probs.max(axis=1)], predictor.card_.get("serving", {}).get("confidence_threshold")


def drift_report(
    logs: str | Path,
    *,
    data: str | Path = "data",
    models: str | Path | None = None,
    since: str | None = "7d",
    embedder: Embedder | None = None,
    settings: Settings | None = None,
    thresholds: DriftThresholds | None = None,
    reference_rows: int = 500,
    score_reference: bool = True,
) -> dict[str, Any]:
    """Compare decisions logged after ``since`` (ISO time or "7d"/"24h"; None for all) with the
    training data. ``reference_rows``: how many dev rows the active model scores for the reference
    confidences (``score_reference=False`` skips it: no model load, no low-confidence reference)."""
    settings = settings or load_settings()
    thresholds = thresholds or DriftThresholds()
    since_text = parse_since(since)
    records = read_log(logs, since_text)
    training = load_rows(data)
    data = Path(data)
    dev = load_split(data) if data.is_dir() else None
    pool = [r for r in training if r.id in dev] if dev else list(training)
    sample = random.Random(0).sample(pool, min(reference_rows, len(pool)))

    registry = ModelRegistry(models if models is not None else settings.model_dir)
    model_dir = registry.active_dir()
    card: dict[str, Any] = {}
    ref_conf: list[float] = []
    threshold = None
    note = ""
    if model_dir is not None:
        from router_ml.artifact import load_card

        card = load_card(model_dir)
        threshold = card.get("serving", {}).get("confidence_threshold")
        if score_reference and sample:
            try:
                ref_conf, threshold = _reference_confidence(model_dir, sample, embedder)
            except (ArtifactError, ImportError) as err:  # e.g. its embedder is not installed here
                note = f"reference not scored ({err}); fallback reference from the model card"

    decided = [r for r in records if r.source in _MODEL_SOURCES]
    conf = [float(r.confidence) for r in decided if isinstance(r.confidence, (int, float))]
    fallback = sum(r.source in _FALLBACK_SOURCES for r in decided) / len(decided) if decided else None
    if ref_conf and threshold is not None:
        ref_fallback = float(np.mean(np.asarray(ref_conf) < threshold))
        ref_fallback_source = f"{len(ref_conf)} training dev rows scored by the active model"
    else:
        target = card.get("serving", {}).get("target_fallback_rate")
        ref_fallback = card.get("dev_serving", {}).get("fallback_share", target)
        ref_fallback_source = "the model card" if ref_fallback is not None else "none"
    low = float(np.mean(np.asarray(conf) < thresholds.low_confidence)) if conf else None
    ref_low = float(np.mean(np.asarray(ref_conf) < thresholds.low_confidence)) if ref_conf else None

    tiers = [t.name for t in Tier]
    texts = [r for r in records if r.text]
    report: dict[str, Any] = {
        "window": {"since": since_text, "decisions": len(records), "classifier_decisions": len(decided),
                   "without_text": len(records) - len(texts)},
        "reference": {"data": str(data), "rows": len(training), "scored": len(ref_conf),
                      "model": registry.active_id() or (str(model_dir) if model_dir else None)},
        "tier_mix": {"recent": _shares((r.routed_tier.name for r in records if r.routed_tier is not None), tiers),
                     "training": _shares((r.tier.name for r in training), tiers)},
        "confidence": {"bins": list(CONFIDENCE_BINS[:-1]), "recent": _histogram(conf),
                       "reference": _histogram(ref_conf) if ref_conf else None},
        "fallback_rate": {"recent": fallback, "reference": ref_fallback, "reference_from": ref_fallback_source,
                          "threshold": threshold},
        "low_confidence_share": {"recent": low, "reference": ref_low, "below": thresholds.low_confidence},
        "length_mix": {  # characters, estimated the same way on both sides (4 a token)
            "recent": _shares((length_bucket(4 * r.est_tokens) for r in records if r.est_tokens is not None),
                              LENGTH_BUCKETS),
            "training": _shares((length_bucket(4 * r.request.est_tokens) for r in training), LENGTH_BUCKETS)},
        "language_mix": {"recent": _shares(guess_language(r.text) for r in texts),
                         "training": _shares(guess_language(r.request.text) for r in training)},
        "warnings": [],
        "note": note,
    }
    for key in ("tier_mix", "length_mix", "language_mix"):
        report[key]["distance"] = _tvd(report[key]["recent"], report[key]["training"])
    for key, name, limit in (("fallback_rate", "fallback rate", thresholds.max_fallback_shift),
                             ("low_confidence_share", f"share below {thresholds.low_confidence:.2f} confidence",
                              thresholds.max_low_confidence_shift)):
        now, ref = report[key]["recent"], report[key]["reference"]
        if now is None or ref is None:
            continue
        report[key]["shift"] = round(now - ref, 4)
        if abs(now - ref) > limit:
            report["warnings"].append(
                f"{name} is {now:.1%} in recent traffic against {ref:.1%} on the training set "
                f"({(now - ref) * 100:+.1f} points, more than {limit * 100:.0f}): traffic has drifted; "
                f"retrain on fresh logs (router-ml retrain --logs {logs})")
    return report


def format_drift(report: dict[str, Any]) -> str:
    """The report as plain text; warnings last, each on a line starting with WARNING."""
    w, ref = report["window"], report["reference"]
    lines = [f"recent: {w['decisions']} decisions since {w['since'] or 'the beginning'} "
             f"({w['without_text']} without text); training set: {ref['rows']} rows of {ref['data']}, "
             f"model {ref['model'] or '(none)'}"]
    for key in ("tier_mix", "length_mix", "language_mix"):
        mix = report[key]
        keys = list(dict.fromkeys([*mix["training"], *mix["recent"]]))[:10]
        cells = "  ".join(f"{k} {mix['recent'].get(k, 0):.0%}/{mix['training'].get(k, 0):.0%}" for k in keys)
        lines.append(f"{key.replace('_', ' ')} (recent/training, distance {mix['distance']:.2f}): {cells}")
    c = report["confidence"]
    lines.append("confidence histogram (recent | reference):")
    edges = [*c["bins"], 1.0]
    for i, share in enumerate(c["recent"]):
        other = c["reference"][i] if c["reference"] else None
        bar = "#" * round(share * 40)
        lines.append(f"  {edges[i]:.1f}-{edges[i + 1]:.1f}  {share:6.1%} {bar:<40}| "
                     + ("-" if other is None else f"{other:.1%}"))
    for key, name in (("fallback_rate", "fallback rate"), ("low_confidence_share", "low-confidence share")):
        s = report[key]
        fmt = lambda v: "-" if v is None else f"{v:.1%}"  # noqa: E731
        lines.append(f"{name}: recent {fmt(s['recent'])}, training {fmt(s['reference'])}")
    if report.get("note"):
        lines.append(f"note: {report['note']}")
    lines.extend(f"WARNING: {m}" for m in report["warnings"])
    if not report["warnings"]:
        lines.append("no drift past the thresholds")
    return "\n".join(lines)
