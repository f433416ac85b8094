"""Recovery-probability model: explainable logistic regression in numpy, trained on payment history.

Example = (account, snapshot date ``s``) where the account has overdue debt at ``s``.
Label = that overdue debt is fully paid by ``s + 30`` days (replayed ledger, so reversals count).
Features use only what was known at ``s`` (:data:`FEATURES`); they are standardised with the
training means and deviations. Training is Newton-Raphson (IRLS) with an L2 penalty and a fixed
iteration count: no randomness, so the same history gives the same coefficients. Held-out accounts
(a stable hash of the account id) give AUC, Brier score and a 10-bin calibration table. An account's
top factors are the features whose standardised value times coefficient pushes its score down most.
Scores are ranking numbers, not money, so they are floats; amounts stay Decimal everywhere else.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta

import numpy as np
import polars as pl

from pipelines.collections.ledger import aging, replay
from pipelines.common.partitions import canonical_json, digest

FEATURES = ("log_overdue", "months_past_due", "overdue_ratio", "on_time_rate", "avg_days_late",
            "open_invoices", "returned_payments", "days_since_payment", "tenure_months", "business")
FACTOR_TEXT = {
    "log_overdue": "large overdue amount",
    "months_past_due": "debt is long past due",
    "overdue_ratio": "overdue is high versus usual bill",
    "on_time_rate": "few bills paid on time",
    "avg_days_late": "usually pays late",
    "open_invoices": "several unpaid bills",
    "returned_payments": "payments returned by the bank",
    "days_since_payment": "no payment for a long time",
    "tenure_months": "short tenure",
    "business": "consumer account",
}
HOLDOUT_SHARE = 30          # percent of accounts held out for evaluation
L2 = 1.0
ITERATIONS = 25


def features_at(invoices: pl.DataFrame, payments: pl.DataFrame, accounts: pl.DataFrame,
                as_of: date, ledger: tuple[pl.DataFrame, pl.DataFrame] | None = None) -> pl.DataFrame:
    """One row per account with overdue debt at ``as_of``: FEATURES plus overdue, customer_value.

    ``ledger`` is ``replay(invoices, payments, as_of)`` when the caller already has it.
    """
    allocations, items = ledger or replay(invoices, payments, as_of)
    book = aging(items, allocations, as_of).filter(pl.col("overdue") > 0)
    if book.is_empty():
        return pl.DataFrame(schema={"account_id": pl.String, **{f: pl.Float64 for f in FEATURES},
                                    "overdue": pl.Float64, "customer_value": pl.Float64})
    due = items.filter(pl.col("due_date") < as_of).with_columns(
        ((pl.col("paid_date").is_not_null()) & (pl.col("paid_date") <= pl.col("due_date"))).alias("on_time"),
        (pl.coalesce("paid_date", pl.lit(as_of)) - pl.col("due_date")).dt.total_days().clip(0, 90).alias("late"),
    ).group_by("account_id").agg(pl.col("on_time").mean().alias("on_time_rate"),
                                 pl.col("late").mean().cast(pl.Float64).alias("avg_days_late"),
                                 (pl.col("open_amount") > 0).sum().cast(pl.Float64).alias("open_invoices"))
    recent = items.sort("issue_date").group_by("account_id").agg(
        pl.col("total").tail(6).cast(pl.Float64).mean().alias("customer_value"),
        pl.col("issue_date").min().alias("first_issue"))
    pay = payments.filter(pl.col("received_date") < as_of)
    returned = pay.filter(pl.col("event_type") != "payment").group_by("account_id").agg(
        pl.len().cast(pl.Float64).alias("returned_payments"))
    last_pay = pay.filter(pl.col("event_type") == "payment").group_by("account_id").agg(
        pl.col("received_date").max().alias("last_payment"))
    seg = accounts.select("account_id", pl.col("segment").is_in(["business", "government"]).cast(pl.Float64)
                          .alias("business"))
    frame = (book.join(due, on="account_id", how="left").join(recent, on="account_id", how="left")
             .join(returned, on="account_id", how="left").join(last_pay, on="account_id", how="left")
             .join(seg, on="account_id", how="left"))
    overdue = pl.col("overdue").cast(pl.Float64)
    return frame.select(
        "account_id",
        overdue.log1p().alias("log_overdue"),
        (pl.col("days_past_due").cast(pl.Float64) / 30).alias("months_past_due"),
        (overdue / pl.col("customer_value").clip(lower_bound=1.0)).alias("overdue_ratio"),
        pl.col("on_time_rate").cast(pl.Float64).fill_null(0.5),
        pl.col("avg_days_late").fill_null(0.0),
        pl.col("open_invoices").fill_null(0.0),
        pl.col("returned_payments").fill_null(0.0),
        ((pl.lit(as_of) - pl.col("last_payment")).dt.total_days().cast(pl.Float64).fill_null(180.0)
         .clip(0, 180)).alias("days_since_payment"),
        ((pl.lit(as_of) - pl.col("first_issue")).dt.total_days().cast(pl.Float64) / 30).clip(0, 36)
        .fill_null(0.0).alias("tenure_months"),
        pl.col("business").fill_null(0.0),
        overdue.alias("overdue"),
        pl.col("customer_value").fill_null(0.0),
    ).sort("account_id")


def training_examples(invoices: pl.DataFrame, payments: pl.DataFrame, accounts: pl.DataFrame,
                      snapshots: list[date], horizon_days: int = 30) -> pl.DataFrame:
    """Features at each snapshot date and the label: overdue at ``s`` fully paid by ``s + horizon``."""
    frames = []
    for s in snapshots:
        feats = features_at(invoices, payments, accounts, s)
        if feats.is_empty():
            continue
        later_alloc, later_items = replay(invoices, payments, s + timedelta(days=horizon_days))
        _, items_now = replay(invoices, payments, s)
        overdue_ids = items_now.filter((pl.col("open_amount") > 0) & (pl.col("due_date") < s)).select(
            "account_id", "invoice_id")
        still = overdue_ids.join(later_items.filter(pl.col("open_amount") > 0), on=["account_id", "invoice_id"])
        unpaid = set(still["account_id"].to_list())
        frames.append(feats.with_columns(
            pl.lit(s).alias("snapshot"),
            (~pl.col("account_id").is_in(list(unpaid))).cast(pl.Int8).alias("recovered")))
    return pl.concat(frames) if frames else pl.DataFrame()


def monthly_snapshots(invoices: pl.DataFrame, day: int = 20, horizon_days: int = 30) -> list[date]:
    """The ``day``-th of every month between the first due date and the last date with a full horizon."""
    first, last = invoices["due_date"].min(), invoices["due_date"].max()
    out, y, m = [], first.year, first.month
    while True:
        s = date(y, m, day)
        if s > last - timedelta(days=horizon_days):
            return out
        if s > first:
            out.append(s)
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)


def is_holdout(account_id: str) -> bool:
    return int(digest("holdout", account_id, length=8), 16) % 100 < HOLDOUT_SHARE


@dataclass(frozen=True)
class RecoveryModel:
    features: tuple[str, ...]
    means: list[float]
    scales: list[float]
    coefficients: list[float]
    intercept: float
    metrics: dict = field(default_factory=dict)
    trained_on: dict = field(default_factory=dict)

    @property
    def model_id(self) -> str:
        return digest(canonical_json({k: v for k, v in asdict(self).items() if k != "metrics"}))

    def standardise(self, frame: pl.DataFrame) -> np.ndarray:
        x = frame.select(list(self.features)).to_numpy().astype(float)
        return (x - np.array(self.means)) / np.array(self.scales)

    def predict(self, frame: pl.DataFrame) -> np.ndarray:
        if frame.is_empty():
            return np.zeros(0)
        return _sigmoid(self.standardise(frame) @ np.array(self.coefficients) + self.intercept)

    def top_factors(self, frame: pl.DataFrame, n: int = 2) -> list[list[str]]:
        """Per row, the ``n`` features lowering the recovery probability most (readable text)."""
        if frame.is_empty():
            return []
        contrib = self.standardise(frame) * np.array(self.coefficients)
        out = []
        for row in contrib:
            order = sorted(range(len(row)), key=lambda j: (row[j], j))
            out.append([FACTOR_TEXT[self.features[j]] for j in order[:n] if row[j] < 0])
        return out

    def to_json(self) -> bytes:
        return canonical_json({"model_id": self.model_id, **asdict(self)})

    @classmethod
    def from_json(cls, data: bytes) -> RecoveryModel:
        doc = json.loads(data)
        doc.pop("model_id", None)
        doc["features"] = tuple(doc["features"])
        return cls(**doc)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -30, 30)))


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = L2, iterations: int = ITERATIONS) -> np.ndarray:
    """Weights (intercept first) by Newton-Raphson with an L2 penalty on the slopes; deterministic."""
    design = np.hstack([np.ones((x.shape[0], 1)), x])
    w = np.zeros(design.shape[1])
    penalty = np.eye(design.shape[1]) * l2
    penalty[0, 0] = 0.0
    for _ in range(iterations):
        p = _sigmoid(design @ w)
        grad = design.T @ (p - y) + penalty @ w
        hess = (design * (p * (1 - p))[:, None]).T @ design + penalty
        w = w - np.linalg.solve(hess, grad)
    return w


def auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney, ties shared)."""
    pos, neg = int(labels.sum()), int(len(labels) - labels.sum())
    if pos == 0 or neg == 0:
        return float("nan")
    ranks = pl.Series(scores).rank("average").to_numpy()
    return float((ranks[labels == 1].sum() - pos * (pos + 1) / 2) / (pos * neg))


def calibration(scores: np.ndarray, labels: np.ndarray, bins: int = 10) -> dict:
    """Brier score, expected calibration error and an equal-count reliability table."""
    order = np.argsort(scores, kind="stable")
    table, ece = [], 0.0
    for chunk in np.array_split(order, bins):
        if len(chunk) == 0:
            continue
        predicted, observed = float(scores[chunk].mean()), float(labels[chunk].mean())
        ece += len(chunk) / len(scores) * abs(predicted - observed)
        table.append({"n": len(chunk), "predicted": round(predicted, 4), "observed": round(observed, 4)})
    return {"brier": round(float(np.mean((scores - labels) ** 2)), 4), "ece": round(ece, 4), "bins": table}


def train(examples: pl.DataFrame, trained_on: dict | None = None) -> RecoveryModel:
    """Fit on the training accounts, evaluate on the held-out ones; returns the model with its metrics."""
    hold = examples["account_id"].map_elements(is_holdout, return_dtype=pl.Boolean)
    fit_rows, test_rows = examples.filter(~hold), examples.filter(hold)
    x = fit_rows.select(list(FEATURES)).to_numpy().astype(float)
    means, scales = x.mean(axis=0), x.std(axis=0)
    scales[scales == 0] = 1.0
    w = fit_logistic((x - means) / scales, fit_rows["recovered"].to_numpy().astype(float))
    model = RecoveryModel(FEATURES, [round(float(v), 10) for v in means], [round(float(v), 10) for v in scales],
                          [round(float(v), 10) for v in w[1:]], round(float(w[0]), 10), {}, dict(trained_on or {}))
    metrics = {"train_examples": fit_rows.height, "holdout_examples": test_rows.height,
               "holdout_base_rate": round(float(test_rows["recovered"].mean() or 0), 4)}
    if test_rows.height:
        scores, labels = model.predict(test_rows), test_rows["recovered"].to_numpy().astype(float)
        metrics["holdout_auc"] = round(auc(scores, labels), 4)
        metrics["train_auc"] = round(auc(model.predict(fit_rows), fit_rows["recovered"].to_numpy().astype(float)), 4)
        metrics["holdout_calibration"] = calibration(scores, labels)
        metrics["holdout_log_loss"] = round(float(-np.mean(
            labels * np.log(np.clip(scores, 1e-12, 1)) + (1 - labels) * np.log(np.clip(1 - scores, 1e-12, 1)))), 4)
        baseline = test_rows["on_time_rate"].to_numpy().astype(float)
        metrics["holdout_auc_on_time_rate_only"] = round(auc(baseline, labels), 4)
    return RecoveryModel(**{**asdict(model), "features": FEATURES, "metrics": metrics})
