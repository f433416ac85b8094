"""Partner settlement statements per period: roaming, interconnect, content partners and dealers.

Inputs are the settlement entries rating wrote (SETTLEMENT_ENTRY_SCHEMA, one row per usage record
and partner) plus the reference tables in the catalogue. Aggregation is SQL over DECIMAL(38,9);
rounding happens once per statement line, in Python, with named modes:

* ``amount``     = sum of precise entry amounts on the line, rounded HALF_UP to the minor unit of
                   the line currency (the currency the IOT / interconnect rate is expressed in);
* ``amount_eur`` = the *precise* sum times the EUR rate valid on the period's first day, rounded
                   HALF_UP to cents (never a rounded amount converted again);
* statement totals are sums of the rounded lines, so a statement always adds up on paper.

Content partners: entries carry the retail revenue of the partner's usage (the revenue basis);
the partner's share is ``basis * share_pct / 100`` from ``tariffs/content_partners.csv``.
Dealers: an activation commission per subscription activated in the period, clawed back
(a receivable line) when the subscription ends within the dealer's charge-back days, plus a residual
share of the monthly fee of every subscription the dealer brought that is active on the period's
first day. Subscriptions name their dealer in an optional ``dealer_id`` column.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import duckdb
import polars as pl

from pipelines.common.csv_safe import safe_csv
from pipelines.common.money import AMOUNT_SCALE, money, round_money, round_to_currency
from pipelines.common.partitions import (
    digest,
    published_manifests,
    read_manifested,
    run_id_for,
    write_partition,
)
from pipelines.common.periods import period_bounds_utc
from pipelines.common.settings import Settings
from pipelines.common.storage import open_store
from pipelines.settlement import reference
from schemas.contracts import CURRENCY_AMOUNT, SETTLEMENT_STATEMENT_LINE_SCHEMA, SETTLEMENT_STATEMENT_SCHEMA

HOME_ZONE = "Europe/Berlin"
LINES_DATASET = "settlement/statement_lines"
STATEMENTS_DATASET = "settlement/statements"

STATEMENT_LINE_SCHEMA = SETTLEMENT_STATEMENT_LINE_SCHEMA
STATEMENT_SCHEMA = SETTLEMENT_STATEMENT_SCHEMA

_AGGREGATE_SQL = """
select partner_id, partner_type, direction, service,
       {traffic_type} as traffic_type,
       case when partner_type = 'interconnect' then coalesce(band, '') else '' end as band,
       currency,
       count(*)::BIGINT as records,
       sum(quantity)::BIGINT as quantity,
       sum(cast(amount as DECIMAL(38,9)))::DECIMAL(38,9) as amount_precise,
       string_agg(DISTINCT rate_id, ' ' ORDER BY rate_id) as rate_ids
from entries
where partner_type in ('roaming', 'interconnect', 'content')
group by all
order by all
"""

_DEFAULT_TRAFFIC_TYPE = """case
    when partner_type = 'roaming' and direction = 'payable' then 'outbound roaming'
    when partner_type = 'roaming' then 'inbound roaming'
    when partner_type = 'interconnect' and direction = 'payable' then 'outgoing termination'
    when partner_type = 'interconnect' then 'incoming termination'
    else 'revenue share' end"""


@dataclass(frozen=True)
class SettlementRun:
    """Where a settlement run wrote its datasets and documents."""

    period: str
    run_id: str
    lines: int
    statements: int
    documents: list[str]


def _q(value: Decimal) -> Decimal:
    return round_money(value, AMOUNT_SCALE)


def _fx(rates: dict[str, Decimal], currency: str, period: str) -> Decimal:
    try:
        return rates[currency.upper()]
    except KeyError as exc:
        raise reference.ReferenceError(
            f"no exchange rate for {currency} valid in {period}: add a row to tariffs/{reference.EXCHANGE_RATES}"
        ) from exc


def usage_lines(entries: pl.DataFrame, period: str, rates: dict[str, Decimal],
                contents: dict[str, reference.ContentPartner]) -> list[dict]:
    """Roaming, interconnect and content lines from settlement entries (aggregated in SQL)."""
    if entries.is_empty():
        return []
    traffic = "coalesce(traffic_type, " + _DEFAULT_TRAFFIC_TYPE + ")" if "traffic_type" in entries.columns \
        else _DEFAULT_TRAFFIC_TYPE
    con = duckdb.connect()
    try:
        con.register("entries", entries)
        rows = con.execute(_AGGREGATE_SQL.format(traffic_type=traffic)).pl().to_dicts()
    finally:
        con.close()
    lines = []
    for row in rows:
        basis = share = None
        precise = money(row["amount_precise"])
        if row["partner_type"] == "content":
            partner = contents.get(row["partner_id"])
            if partner is None:
                raise reference.ReferenceError(
                    f"content partner {row['partner_id']} has entries in {period} but no row in "
                    f"tariffs/{reference.CONTENT_PARTNERS}")
            basis, share = precise, partner.share_pct
            precise = _q(basis * share / 100)
        minutes = _q(Decimal(row["quantity"]) / 60) if row["service"] == "voice" else None
        lines.append({**row, "minutes": minutes, "basis_amount": basis, "share_pct": share,
                      "amount_precise": precise})
    return lines


def content_entries(rated: pl.DataFrame | None, usage: pl.DataFrame | None,
                    contents: dict[str, reference.ContentPartner]) -> pl.DataFrame:
    """Revenue-share entries for content partners: rated usage on each partner's rating group.

    Rating writes roaming and interconnect entries only; the revenue basis of a content partner is
    the retail charge of the usage on its rating group (zero-rated usage has a zero basis).
    """
    from schemas.contracts import SETTLEMENT_ENTRY_SCHEMA

    empty = pl.DataFrame(schema=SETTLEMENT_ENTRY_SCHEMA)
    if rated is None or usage is None or rated.is_empty() or not contents or "rating_group" not in usage.columns:
        return empty
    groups = pl.DataFrame({"rating_group": [c.rating_group for c in contents.values()],
                           "partner_id": list(contents)}, schema={"rating_group": pl.Int64, "partner_id": pl.String})
    tagged = (usage.select("record_id", pl.col("rating_group").cast(pl.Int64)).unique("record_id")
              .join(groups, on="rating_group", how="inner"))
    frame = rated.join(tagged, on="record_id", how="inner").select(
        "record_id", "partner_id", pl.lit("content").alias("partner_type"), pl.lit("payable").alias("direction"),
        "service", "start_time", "usage_date", "quantity", pl.col("charge").alias("amount"), "currency",
        pl.format("SHARE:{}", "partner_id").alias("rate_id"), pl.lit("").alias("band"))
    return frame.cast(SETTLEMENT_ENTRY_SCHEMA).sort("record_id")  # type: ignore[arg-type]


def dealer_lines(subscriptions: pl.DataFrame | None, plans: dict[str, Decimal], period: str,
                 dealer_table: dict[str, reference.Dealer]) -> list[dict]:
    """Activation commissions, charge-backs and residual shares per dealer for the period."""
    if subscriptions is None or "dealer_id" not in subscriptions.columns or not dealer_table:
        return []
    start, end = period_bounds_utc(period, 1, HOME_ZONE)
    subs = subscriptions.filter(pl.col("dealer_id").is_not_null()).sort("subscription_id")
    acc: dict[tuple[str, str], dict] = {}

    def add(dealer: reference.Dealer, kind: str, direction: str, amount: Decimal, basis: Decimal | None) -> None:
        line = acc.setdefault((dealer.dealer_id, kind), {
            "partner_id": dealer.dealer_id, "partner_type": "dealer", "direction": direction, "service": kind,
            "traffic_type": "dealer commission", "band": "", "currency": dealer.currency, "records": 0,
            "rate_ids": f"DEALER:{dealer.dealer_id}:{kind}",
            "quantity": 0, "amount_precise": Decimal(0), "minutes": None,
            "basis_amount": Decimal(0) if basis is not None else None,
            "share_pct": dealer.residual_share_pct if kind == "residual" else None})
        line["records"] += 1
        line["quantity"] += 1
        line["amount_precise"] += amount
        if basis is not None:
            line["basis_amount"] += basis

    for sub in subs.iter_rows(named=True):
        dealer = dealer_table.get(sub["dealer_id"])
        if dealer is None:
            raise reference.ReferenceError(
                f"subscription {sub['subscription_id']} names dealer {sub['dealer_id']} that has no row in "
                f"tariffs/{reference.DEALERS} for {period}")
        v_from, v_to = sub["valid_from"], sub["valid_to"]
        if start <= v_from < end:
            add(dealer, "activation", "payable", dealer.activation_commission, None)
        if v_to is not None and start <= v_to < end and (v_to - v_from).days < dealer.chargeback_days:
            add(dealer, "chargeback", "receivable", dealer.activation_commission, None)
        if v_from <= start and (v_to is None or v_to > start):
            fee = plans.get(sub["plan_id"])
            if fee is None:
                raise reference.ReferenceError(f"plan {sub['plan_id']} of {sub['subscription_id']} not in plans.csv")
            add(dealer, "residual", "payable", _q(fee * dealer.residual_share_pct / 100), fee)
    return [acc[k] for k in sorted(acc)]


def finish_lines(raw: Iterable[dict], period: str, rates: dict[str, Decimal],
                 contents: dict[str, reference.ContentPartner],
                 dealer_table: dict[str, reference.Dealer]) -> pl.DataFrame:
    """Round each line once, convert to EUR, name the partner; a sorted frame in the line contract."""
    out = []
    for line in raw:
        precise = money(line["amount_precise"])
        fx = _fx(rates, line["currency"], period)
        out.append({
            **{k: line[k] for k in ("partner_id", "partner_type", "direction", "service", "traffic_type", "band",
                                    "records", "quantity", "minutes", "basis_amount", "share_pct", "currency",
                                    "rate_ids")},
            "statement_id": reference_statement_id(period, line["partner_type"], line["partner_id"]),
            "period": period,
            "partner_name": reference.partner_name(line["partner_id"], line["partner_type"], contents, dealer_table),
            "amount_precise": _q(precise),
            "amount": round_to_currency(precise, line["currency"], "half_up"),
            "fx_rate": fx,
            "amount_eur": round_money(precise * fx, 2, "half_up"),
        })
    frame = pl.DataFrame(out, schema=STATEMENT_LINE_SCHEMA, orient="row") if out else \
        pl.DataFrame(schema=STATEMENT_LINE_SCHEMA)
    return frame.select(list(STATEMENT_LINE_SCHEMA)).sort(
        ["partner_type", "partner_id", "direction", "service", "traffic_type", "band", "currency"])


def reference_statement_id(period: str, partner_type: str, partner_id: str) -> str:
    """Stable statement id: the same partner and period always get the same id."""
    return "ST-" + digest(period, partner_type, partner_id, length=12)


def statement_totals(lines: pl.DataFrame) -> pl.DataFrame:
    """One row per partner statement: totals are sums of the rounded EUR lines."""
    zero = pl.lit(Decimal("0.00")).cast(CURRENCY_AMOUNT)
    frame = lines.group_by(["statement_id", "period", "partner_id", "partner_type", "partner_name"]).agg(
        pl.len().cast(pl.Int64).alias("lines"),
        pl.col("records").sum().cast(pl.Int64).alias("records"),
        pl.when(pl.col("direction") == "payable").then(pl.col("amount_eur")).otherwise(zero).sum()
        .cast(CURRENCY_AMOUNT).alias("payable_eur"),
        pl.when(pl.col("direction") == "receivable").then(pl.col("amount_eur")).otherwise(zero).sum()
        .cast(CURRENCY_AMOUNT).alias("receivable_eur"),
    ).with_columns((pl.col("receivable_eur") - pl.col("payable_eur")).cast(CURRENCY_AMOUNT).alias("net_eur"))
    return frame.select(list(STATEMENT_SCHEMA)).sort(["partner_type", "partner_id"])


def load_plans(tariffs_dir: str) -> dict[str, Decimal]:
    with (Path(tariffs_dir) / "plans.csv").open(newline="", encoding="utf-8") as fh:
        return {r["plan_id"]: money(r["monthly_fee"]) for r in csv.DictReader(fh)}


def statement_csv(lines: pl.DataFrame) -> bytes:
    """A partner's statement lines as CSV (amounts as exact decimal text; partner/dealer names neutralised)."""
    return safe_csv(lines.select([c for c in STATEMENT_LINE_SCHEMA if c != "statement_id"]))


def _usage_manifests_near(lake, period: str) -> list:  # noqa: ANN001 - Store
    """Usage partitions that can hold records of the bill period (cycle days reach into the next month)."""
    start, _ = period_bounds_utc(period, 1, HOME_ZONE)
    lo, hi = (start - timedelta(days=2)).date().isoformat(), (start + timedelta(days=62)).date().isoformat()
    return [m for m in published_manifests(lake, "usage")
            if lo <= m.partition.get("usage_date", lo) <= hi]


def run_settlement(settings: Settings, period: str, *, documents: bool = True) -> SettlementRun:
    """Build every partner statement of ``period``, publish them to the lake, write CSV + PDF per partner."""
    lake = open_store(settings.lake_uri, settings.s3)
    entry_manifests = published_manifests(lake, "settlement_entries", {"period": period})
    sub_manifests = published_manifests(lake, "customers/subscriptions")
    entries = read_manifested(lake, entry_manifests)
    subscriptions = read_manifested(lake, sub_manifests)
    contents_now = reference.content_partners(settings.tariffs_dir, period)
    rated_manifests = published_manifests(lake, "rated", {"period": period})
    usage_manifests = _usage_manifests_near(lake, period) if rated_manifests and contents_now else []
    shares = content_entries(read_manifested(lake, rated_manifests), read_manifested(lake, usage_manifests),
                             contents_now)
    if entries is not None and entries.height and shares.height:
        shares = shares.filter(~pl.col("partner_id").is_in(
            entries.filter(pl.col("partner_type") == "content")["partner_id"].unique().to_list()))
    if shares.height:
        entries = shares if entries is None else pl.concat([entries.select(shares.columns).cast(shares.schema),
                                                            shares])
    rates = reference.exchange_rates(settings.tariffs_dir, period)
    contents = reference.content_partners(settings.tariffs_dir, period)
    dealer_table = reference.dealers(settings.tariffs_dir, period)
    raw = usage_lines(entries if entries is not None else pl.DataFrame(), period, rates, contents)
    raw += dealer_lines(subscriptions, load_plans(settings.tariffs_dir), period, dealer_table)
    lines = finish_lines(raw, period, rates, contents, dealer_table)
    totals = statement_totals(lines)
    inputs = {m.prefix: m.run_id for m in [*entry_manifests, *sub_manifests, *rated_manifests, *usage_manifests]}
    inputs.update(reference.reference_checksums(settings.tariffs_dir))
    run_id = run_id_for(inputs, period=period, stage="settlement")
    write_partition(lake, LINES_DATASET, {"period": period}, run_id, lines, inputs=inputs)
    write_partition(lake, STATEMENTS_DATASET, {"period": period}, run_id, totals, inputs=inputs)
    docs: list[str] = []
    if documents:
        from pipelines.settlement.documents import write_documents

        docs = write_documents(Path(settings.output_dir) / "settlement" / period, lines, totals)
    return SettlementRun(period, run_id, lines.height, totals.height, docs)
