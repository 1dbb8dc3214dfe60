"""Lead scores that explain themselves: transparent rules, and a small learned model.

The rule-based score (0-100) adds points for the lead's source, how complete its contact data
is, how recently and how often it was talked to, and the company's size; every point comes
with its reason. Once a workspace has enough decided leads (converted or disqualified), a
logistic regression over the same facts is fitted with numpy (Newton steps, L2 penalty) and
judged on held-out leads against the rules. Its explanation is per fact: how many points the
score moves compared with an average lead.

Pure: no database, no Slack. The service gathers the facts and stores the model.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import numpy as np
from numpy.typing import NDArray

from crmbot.reporting import ScoreReason

MIN_DECIDED = 50  # converted + disqualified leads before a model is trained
HELD_OUT_EVERY = 4  # one lead in four (by id) is kept out of training to judge the model
L2 = 1.0
SOURCE_GROUPS: dict[str, tuple[str, ...]] = {
    "referral": ("referral", "referred", "reference", "word of mouth", "customer"),
    "partner": ("partner", "reseller", "channel"),
    "event": ("trade show", "tradeshow", "event", "conference", "webinar", "meetup", "expo"),
    "inbound": ("website", "web", "inbound", "form", "contact form", "organic", "seo", "chat"),
    "social": ("linkedin", "twitter", "social", "facebook", "ads", "ad", "paid", "google"),
    "cold": ("cold", "outbound", "purchased", "list", "cold call", "import"),
}
SOURCE_POINTS = {"referral": 25, "partner": 20, "event": 15, "inbound": 12, "social": 8,
                 "other": 5, "cold": 2, "none": 0}  # fmt: skip
GROUPS = tuple(SOURCE_POINTS)


@dataclass(frozen=True)
class LeadFacts:
    """What a lead's score is computed from."""

    source: str | None
    has_email: bool
    has_phone: bool
    has_company: bool
    interactions: int  # logged on the lead
    days_since_touch: float | None  # since the last interaction; None when never
    company_size: int | None  # employees, when known


def source_group(source: str | None) -> str:
    """The kind of source: referral, partner, event, inbound, social, cold, other or none."""
    if not source or not source.strip():
        return "none"
    word = source.strip().lower().replace("_", " ").replace("-", " ")
    for group, names in SOURCE_GROUPS.items():
        if word in names or any(name in word for name in names if len(name) > 3):
            return group
    return "other"


def company_size(extra: dict[str, Any] | None) -> int | None:
    """Employees from intake/import fields (size, employees, company_size, headcount)."""
    for key in ("company_size", "employees", "size", "headcount", "employee_count"):
        value = (extra or {}).get(key)
        if value is None:
            continue
        # ASCII digits only ("²" is a digit to str.isdigit, not to int), and few enough to be
        # a head count.
        digits = "".join(ch for ch in str(value).split("-")[-1] if ch in "0123456789")
        if digits and len(digits) <= 12:
            return int(digits)
    return None


# --- rules -----------------------------------------------------------------------------


def rule_score(facts: LeadFacts) -> tuple[int, tuple[ScoreReason, ...]]:
    """0-100 and the reasons, largest first."""
    reasons: list[ScoreReason] = []
    group = source_group(facts.source)
    if group == "none":
        reasons.append(ScoreReason(0, "no source recorded"))
    else:
        reasons.append(ScoreReason(SOURCE_POINTS[group], f"source: {facts.source} ({group})"))
    have = [
        name
        for name, present in (
            ("email", facts.has_email),
            ("phone", facts.has_phone),
            ("company", facts.has_company),
        )
        if present
    ]
    points = 10 * facts.has_email + 10 * facts.has_phone + 5 * facts.has_company
    missing = [n for n in ("email", "phone", "company") if n not in have]
    detail = f"{' and '.join(have)} on file" if have else "no email, phone or company"
    if have and missing:
        detail += f" (no {' or '.join(missing)})"
    reasons.append(ScoreReason(points, detail))
    days = facts.days_since_touch
    if days is None:
        reasons.append(ScoreReason(0, "never contacted"))
    else:
        recent = 20 if days <= 7 else 10 if days <= 30 else 3 if days <= 90 else 0
        reasons.append(ScoreReason(recent, f"last contact {_ago(days)}"))
    count = facts.interactions
    often = 15 if count >= 5 else 10 if count >= 2 else 5 if count == 1 else 0
    if count:
        reasons.append(ScoreReason(often, f"{count} interaction{'s' if count != 1 else ''}"))
    size = facts.company_size
    if size is not None:
        sized = 15 if size >= 1000 else 10 if size >= 200 else 6 if size >= 50 else 3
        reasons.append(ScoreReason(sized, f"company of {size:,} people"))
    total = max(0, min(100, sum(r.points for r in reasons)))
    return total, tuple(sorted(reasons, key=lambda r: -r.points))


def _ago(days: float) -> str:
    whole = int(days)
    return "today" if whole == 0 else f"{whole} day{'s' if whole != 1 else ''} ago"


# --- the learned model -------------------------------------------------------------------

FEATURES: tuple[str, ...] = (
    *(f"source:{g}" for g in GROUPS if g != "none"),
    "has_email",
    "has_phone",
    "has_company",
    "interactions",
    "recency",
    "size",
    "size_known",
)
LABELS = {
    "has_email": "email on file",
    "has_phone": "phone on file",
    "has_company": "company on file",
    "interactions": "number of interactions",
    "recency": "how recently contacted",
    "size": "company size",
    "size_known": "company size known",
}


def features(facts: LeadFacts) -> list[float]:
    group = source_group(facts.source)
    touch = 0.0 if facts.days_since_touch is None else math.exp(-facts.days_since_touch / 30)
    return [
        *(1.0 if group == g else 0.0 for g in GROUPS if g != "none"),
        float(facts.has_email),
        float(facts.has_phone),
        float(facts.has_company),
        math.log1p(facts.interactions),
        touch,
        math.log1p(facts.company_size or 0),
        float(facts.company_size is not None),
    ]


def matrix(rows: Sequence[LeadFacts]) -> NDArray[np.float64]:
    return np.array([features(f) for f in rows], dtype=np.float64).reshape(-1, len(FEATURES))


def _sigmoid(z: NDArray[np.float64]) -> NDArray[np.float64]:
    result: NDArray[np.float64] = 1.0 / (1.0 + np.exp(-np.clip(z, -30, 30)))
    return result


@dataclass(frozen=True)
class Model:
    """Standardized logistic regression: p = sigmoid(b + w . (x - mean) / scale)."""

    names: tuple[str, ...]
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    weights: tuple[float, ...]
    bias: float

    def to_json(self) -> dict[str, Any]:
        return {
            "names": list(self.names),
            "mean": list(self.mean),
            "scale": list(self.scale),
            "weights": list(self.weights),
            "bias": self.bias,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Model | None:
        if tuple(data.get("names", ())) != FEATURES:  # features changed since: retrain first
            return None
        return cls(
            names=FEATURES,
            mean=tuple(float(v) for v in data["mean"]),
            scale=tuple(float(v) for v in data["scale"]),
            weights=tuple(float(v) for v in data["weights"]),
            bias=float(data["bias"]),
        )

    def _z(self, x: NDArray[np.float64]) -> NDArray[np.float64]:
        standard = (x - np.array(self.mean)) / np.array(self.scale)
        z: NDArray[np.float64] = standard @ np.array(self.weights) + self.bias
        return z

    def probabilities(self, x: NDArray[np.float64]) -> NDArray[np.float64]:
        return _sigmoid(self._z(x))

    def score(self, facts: LeadFacts) -> tuple[int, tuple[ScoreReason, ...]]:
        """0-100 (the chance of converting) and, per fact, the points it adds or takes
        compared with a lead that is average in that fact."""
        x = np.array([features(facts)], dtype=np.float64)
        p = float(self.probabilities(x)[0])
        reasons: list[ScoreReason] = []
        for i, name in enumerate(self.names):
            average = x.copy()
            average[0, i] = self.mean[i]
            points = round(100 * (p - float(self.probabilities(average)[0])))
            if points:
                reasons.append(ScoreReason(points, _explain(name, facts)))
        reasons.sort(key=lambda r: -abs(r.points))
        return round(100 * p), tuple(reasons)


def _explain(name: str, facts: LeadFacts) -> str:
    if name.startswith("source:"):
        group = name.split(":", 1)[1]
        mine = source_group(facts.source)
        return f"source {'is' if mine == group else 'is not'} {group}"
    label = LABELS[name]
    if name == "interactions":
        return f"{label}: {facts.interactions}"
    if name == "recency":
        days = facts.days_since_touch
        return f"{label}: {'never' if days is None else _ago(days)}"
    if name in ("size", "size_known"):
        size = facts.company_size
        return f"{label}: {'unknown' if size is None else f'{size:,}'}"
    present = getattr(facts, name)
    return label if present else f"no {label.removesuffix(' on file')}"


def fit(x: NDArray[np.float64], y: NDArray[np.float64], *, l2: float = L2) -> Model:
    """Logistic regression by Newton's method with an L2 penalty (the bias is not penalized)."""
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale[scale < 1e-9] = 1.0
    standard = np.hstack([np.ones((len(x), 1)), (x - mean) / scale])
    penalty = np.eye(standard.shape[1]) * l2
    penalty[0, 0] = 0.0
    beta = np.zeros(standard.shape[1])
    for _ in range(50):
        p = _sigmoid(standard @ beta)
        gradient = standard.T @ (p - y) + penalty @ beta
        hessian = standard.T @ (standard * (p * (1 - p))[:, None]) + penalty
        step = np.linalg.solve(hessian, gradient)
        beta -= step
        if float(np.max(np.abs(step))) < 1e-8:
            break
    return Model(
        names=FEATURES,
        mean=tuple(float(v) for v in mean),
        scale=tuple(float(v) for v in scale),
        weights=tuple(float(v) for v in beta[1:]),
        bias=float(beta[0]),
    )


def auc(scores: NDArray[np.float64], labels: NDArray[np.float64]) -> float:
    """Area under the ROC curve: the chance a random converted lead outscores a random
    disqualified one (ties count half)."""
    positive = scores[labels == 1]
    negative = scores[labels == 0]
    if not len(positive) or not len(negative):
        return 0.5
    greater = (positive[:, None] > negative[None, :]).sum()
    ties = (positive[:, None] == negative[None, :]).sum()
    return float((greater + 0.5 * ties) / (len(positive) * len(negative)))


def best_cutoff(scores: NDArray[np.float64], labels: NDArray[np.float64]) -> float:
    """The threshold on `scores` that classes the most training leads right."""
    candidates = np.unique(np.concatenate([scores, [np.inf]]))
    right = [float(((scores >= c) == (labels == 1)).mean()) for c in candidates]
    return float(candidates[int(np.argmax(right))])


@dataclass(frozen=True)
class Evaluation:
    model: Model
    samples: int
    held_out: int
    accuracy: Decimal
    rule_accuracy: Decimal
    auc: Decimal
    rule_auc: Decimal

    @property
    def beats_rules(self) -> bool:
        return self.auc > self.rule_auc

    def metrics(self) -> dict[str, Any]:
        return {
            "samples": self.samples,
            "held_out": self.held_out,
            "accuracy": str(self.accuracy),
            "rule_accuracy": str(self.rule_accuracy),
            "auc": str(self.auc),
            "rule_auc": str(self.rule_auc),
        }


def _pct(value: float) -> Decimal:
    return Decimal(str(value * 100)).quantize(Decimal("0.1"), ROUND_HALF_UP)


def _ratio(value: float) -> Decimal:
    return Decimal(str(value)).quantize(Decimal("0.01"), ROUND_HALF_UP)


def train(
    ids: Sequence[int], rows: Sequence[LeadFacts], converted: Sequence[bool]
) -> Evaluation | None:
    """Fit on three leads in four, judge on the fourth (chosen by id, so it is stable);
    None when there are too few decided leads or a split lacks either outcome."""
    if len(rows) < MIN_DECIDED:
        return None
    x = matrix(rows)
    y = np.array([1.0 if c else 0.0 for c in converted])
    test = np.array([i % HELD_OUT_EVERY == 0 for i in ids])
    train_y, test_y = y[~test], y[test]
    if len(set(train_y.tolist())) < 2 or len(set(test_y.tolist())) < 2:
        return None
    model = fit(x[~test], train_y)
    learned = model.probabilities(x[test])
    rules = np.array([rule_score(f)[0] for f in rows], dtype=np.float64)
    cutoff = best_cutoff(rules[~test], train_y)
    return Evaluation(
        model=model,
        samples=len(rows),
        held_out=int(test.sum()),
        accuracy=_pct(float(((learned >= 0.5) == (test_y == 1)).mean())),
        rule_accuracy=_pct(float(((rules[test] >= cutoff) == (test_y == 1)).mean())),
        auc=_ratio(auc(learned, test_y)),
        rule_auc=_ratio(auc(rules[test], test_y)),
    )
