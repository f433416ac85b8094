"""Deterministic sample data: a customer base and a month of CDR files with known, listed faults.

``generate(out_dir, subscribers, period, seed)`` writes ``accounts.csv``, ``subscriptions.csv`` and
``landing/<source>/<source>_<seq:06d>_<YYYYMMDD>.<ext>[.gz]`` under ``out_dir`` and returns a
:class:`GeneratedData` whose ``faults`` ledger says exactly which fault was injected where, so tests and
assurance can prove each one was caught. Everything is drawn from one ``numpy`` generator seeded
with ``seed`` and written in sorted order, so the same arguments give byte-identical files.
"""

from __future__ import annotations

import gzip
import io
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl

from pipelines.common.periods import period_bounds_utc
from pipelines.common.settings import Settings
from pipelines.common.storage import open_store
from schemas.contracts import CANONICAL_COLUMNS

HOME_TZ = "Europe/Berlin"
ON_NET = "49151"
OFF_NET_MOBILE = ("49160", "49170", "49176")
FIXED = ("4930", "4940", "4989")
INTERNATIONAL = ("44", "33", "1", "91", "90")
PREMIUM = "49900"
VISITED = ("FRAF1", "ESPTE", "GBRCN", "USAAT", "TURTC")
SLICES = ("1-000001", "2-000002", "3-000003")
UNKNOWN_MSISDN_BASE = 491519990000

# Hour-of-day shape (local time) and day-of-week shape (Mon..Sun) of traffic.
HOURLY = np.array([1, 0.6, 0.4, 0.3, 0.3, 0.5, 1.5, 3, 5, 6, 6, 6, 6, 5.5, 5.5, 5.5, 6, 7, 7.5, 7, 6, 5, 3.5, 2])
WEEKDAY_VOICE = np.array([1.1, 1.1, 1.1, 1.1, 1.05, 0.7, 0.6])
WEEKDAY_DATA = np.array([0.95, 0.95, 0.95, 0.95, 1.0, 1.2, 1.25])


@dataclass(frozen=True)
class Fault:
    """One injected fault: what, where, and which outcome mediation must give it."""

    kind: str               # e.g. DUP_WITHIN_FILE, CORRUPT_GZIP, UNKNOWN_SUBSCRIBER
    file: str               # landing key
    line: int | None        # 1-based line number in the (decompressed) file, None for whole-file faults
    expected: str           # expected outcome: rejected:<CODE> | duplicate | suspense:<CODE> | quarantine:<CODE> | ...
    detail: str = ""


@dataclass
class GeneratedData:
    out_dir: Path
    accounts_csv: Path
    subscriptions_csv: Path
    landing_dir: Path
    files: list[str] = field(default_factory=list)          # landing keys, sorted
    faults: list[Fault] = field(default_factory=list)
    records: int = 0                                         # CDR lines written (all files, all copies)
    records_by_file: dict[str, int] = field(default_factory=dict)  # CDR lines per landing key


# ----------------------------------------------------------------------------------------------
# customer base
# ----------------------------------------------------------------------------------------------
def _account(aid: str, name: str, segment: str, parent: str | None, rng: np.random.Generator, i: int) -> dict:
    city, postcode, juris = [("Berlin", "10115", "DE-BE"), ("Hamburg", "20095", "DE-HH"),
                             ("Munich", "80331", "DE-BY")][i % 3]
    return {
        "account_id": aid, "name": name, "currency": "EUR", "timezone": HOME_TZ,
        "bill_cycle_day": str(15 if (segment == "consumer" and rng.random() < 0.1) else 1),
        "tax_jurisdiction": juris,
        "payment_terms_days": str(30 if segment in ("business", "government") else 14),
        "address_line1": f"Musterstrasse {1 + i % 200}", "city": city, "postcode": postcode, "country": "DE",
        "email": f"{aid.lower()}@example.org", "phone": "", "parent_account_id": parent or "",
        "segment": segment, "billing_entity": "TBM-DE",
    }


DEALERS = ("D_BER01", "D_HAM02", "D_WEB03")
"""Dealers of tariffs/dealers.csv the generator's lines are sold through."""


def _dealer_of(idx: int, plan: str) -> str:
    """Three in five consumer and prepaid lines were sold by a dealer (by line number: no random draw, so
    the rest of the data is unchanged); business lines are sold directly."""
    return "" if plan == "P_BIZ" or idx % 5 >= 3 else DEALERS[idx % 5]


def build_customers(subscribers: int, period: str, rng: np.random.Generator) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Accounts and subscriptions (as text columns) for about ``subscribers`` lines."""
    start, end = period_bounds_utc(period, 1, HOME_TZ)
    span_days = (end - start).days
    accounts: list[dict] = []
    subs: list[dict] = []
    line_no = 0

    def add_line(account_id: str, plan: str, payment: str, valid_from: datetime | None = None,
                 valid_to: datetime | None = None, sub_id: str | None = None, msisdn_idx: int | None = None) -> None:
        nonlocal line_no
        idx = line_no if msisdn_idx is None else msisdn_idx
        if msisdn_idx is None:
            line_no += 1
        subs.append({
            "subscription_id": sub_id or f"S{idx + 1:07d}", "account_id": account_id,
            "msisdn": f"{ON_NET}{1000000 + idx * 7 % 9000000:07d}", "imsi": f"26201{idx:010d}",
            "plan_id": plan, "payment_type": payment,
            "valid_from": (valid_from or datetime(2024, 1, 1, tzinfo=start.tzinfo)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "valid_to": valid_to.strftime("%Y-%m-%dT%H:%M:%SZ") if valid_to else "",
            "dealer_id": _dealer_of(idx, plan),
        })

    def mid(day: int) -> datetime:
        return start + timedelta(days=day)

    acc_no = 0
    while line_no < subscribers:
        acc_no += 1
        aid = f"A{acc_no:07d}"
        kind = rng.random()
        if kind < 0.45:                               # consumer postpaid, one line
            accounts.append(_account(aid, f"Consumer {acc_no}", "consumer", None, rng, acc_no))
            r = rng.random()
            if r < 0.03:                              # joined mid-month
                add_line(aid, "P_BASIC", "postpaid", valid_from=mid(int(rng.integers(3, span_days - 3))))
            elif r < 0.05:                            # left mid-month
                add_line(aid, "P_BASIC", "postpaid", valid_to=mid(int(rng.integers(3, span_days - 3))))
            else:
                add_line(aid, "P_UNLTD" if rng.random() < 0.35 else "P_BASIC", "postpaid")
        elif kind < 0.60:                             # family: head (postpaid) + two prepaid members
            accounts.append(_account(aid, f"Family {acc_no}", "consumer", None, rng, acc_no))
            add_line(aid, "P_FAMILY", "postpaid")
            for m in range(2):
                acc_no += 1
                mid_id = f"A{acc_no:07d}"
                accounts.append(_account(mid_id, f"Family {acc_no - 1 - m} member {m + 1}", "consumer", aid, rng, acc_no))
                add_line(mid_id, "PRE_PAYG" if m == 0 else "PRE_BUNDLE", "prepaid")
        elif kind < 0.78:                             # business with several lines
            accounts.append(_account(aid, f"Business {acc_no} GmbH", "business", None, rng, acc_no))
            for _ in range(int(rng.integers(3, 9))):
                add_line(aid, "P_BIZ", "postpaid")
        elif kind < 0.95:                             # prepaid only
            accounts.append(_account(aid, f"Prepaid {acc_no}", "consumer", None, rng, acc_no))
            add_line(aid, "PRE_BUNDLE" if rng.random() < 0.5 else "PRE_PAYG", "prepaid")
        else:                                         # VIP / government
            segment = "vip" if rng.random() < 0.6 else "government"
            accounts.append(_account(aid, f"{segment.title()} {acc_no}", segment, None, rng, acc_no))
            add_line(aid, "P_UNLTD", "postpaid")
    # one plan change mid-month: the first consumer line moves from P_BASIC to P_UNLTD on day 15
    first = next(i for i, s in enumerate(subs) if s["plan_id"] in ("P_BASIC", "P_UNLTD") and not s["valid_to"]
                 and s["valid_from"].startswith("2024"))
    change = mid(14)
    changed = dict(subs[first], plan_id="P_BASIC", valid_to=change.strftime("%Y-%m-%dT%H:%M:%SZ"))
    subs[first] = changed
    # a plan change is not a new sale: the second row names no dealer (no second activation commission)
    subs.append(dict(changed, plan_id="P_UNLTD", valid_from=changed["valid_to"], valid_to="", dealer_id=""))
    acc = pl.DataFrame(accounts, schema=dict.fromkeys(accounts[0], pl.String))
    sub = pl.DataFrame(subs, schema=dict.fromkeys(subs[0], pl.String)).sort("msisdn", "valid_from")
    return acc, sub


# ----------------------------------------------------------------------------------------------
# usage
# ----------------------------------------------------------------------------------------------
def _numbers(rng: np.random.Generator, n: int, own: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Other-party numbers with a realistic destination mix; returns (numbers, category)."""
    cat = rng.choice(6, size=n, p=[0.40, 0.28, 0.16, 0.12, 0.01, 0.03])
    digits = rng.integers(0, 10_000_000, size=n)
    prefixes = np.empty(n, dtype=object)
    prefixes[cat == 0] = ON_NET
    prefixes[cat == 1] = np.array(OFF_NET_MOBILE, dtype=object)[rng.integers(0, 3, size=int((cat == 1).sum()))]
    prefixes[cat == 2] = np.array(FIXED, dtype=object)[rng.integers(0, 3, size=int((cat == 2).sum()))]
    prefixes[cat == 3] = np.array(INTERNATIONAL, dtype=object)[rng.integers(0, 5, size=int((cat == 3).sum()))]
    prefixes[cat == 4] = PREMIUM
    prefixes[cat == 5] = ON_NET
    nums = pl.Series(prefixes.astype(str)) + pl.Series(digits).cast(pl.String).str.zfill(7)
    out = nums.to_numpy().astype(object)
    own_pick = cat == 5                                   # calls between our own subscribers
    out[own_pick] = own[rng.integers(0, len(own), size=int(own_pick.sum()))]
    return out, cat


def _times(rng: np.random.Generator, n: int, start: datetime, days: int, weekday_shape: np.ndarray) -> np.ndarray:
    """Start instants (UTC epoch seconds) with a weekly and daily traffic shape."""
    day_w = np.array([weekday_shape[(start + timedelta(days=d, hours=2)).weekday()] for d in range(days)])
    day = rng.choice(days, size=n, p=day_w / day_w.sum())
    hour = rng.choice(24, size=n, p=HOURLY / HOURLY.sum())
    sec = rng.integers(0, 3600, size=n)
    # period start is local midnight; local hour h is start + day + h (DST drift of one hour ignored)
    return int(start.timestamp()) + day * 86400 + hour * 3600 + sec


def build_usage(subs: pl.DataFrame, period: str, rng: np.random.Generator, per_subscriber: float) -> pl.DataFrame:
    """Canonical usage rows (typed) for every subscription, inside its validity, plus a ``source`` column."""
    start, end = period_bounds_utc(period, 1, HOME_TZ)
    days = (end - start).days
    lines = subs.unique("msisdn", keep="first", maintain_order=True)
    n_lines = lines.height
    msisdns = lines["msisdn"].to_numpy().astype(object)
    imsis = lines["imsi"].to_numpy().astype(object)
    activity = rng.gamma(2.0, 0.5, size=n_lines)
    p = activity / activity.sum()
    total = int(per_subscriber * n_lines)
    frames = []

    # voice: 35 %
    n = int(total * 0.35)
    who = rng.choice(n_lines, size=n, p=p)
    other, cat = _numbers(rng, n, msisdns)
    outcome = rng.choice(np.array(["answered", "unanswered", "busy", "failed"]), size=n, p=[0.8, 0.12, 0.05, 0.03])
    dur = np.where(outcome == "answered", np.clip(rng.lognormal(4.3, 1.0, size=n).astype(np.int64), 1, 7200), 0)
    roam = rng.random(n) < 0.04
    frames.append(pl.DataFrame({
        "service": "voice",
        "direction": rng.choice(np.array(["MO", "MT"]), size=n, p=[0.65, 0.35]),
        "i": who, "other_party": other.astype(str), "t": _times(rng, n, start, days, WEEKDAY_VOICE),
        "duration_s": dur, "quantity": dur, "call_outcome": outcome,
        "visited_network": np.where(roam, np.array(VISITED)[rng.integers(0, 5, size=n)], ""),
        "source": np.where(who % 5 < 3, "msc-east", np.where(who % 5 == 3, "msc-west", "fs-voice")), "cat": cat,
    }))
    # sms: 20 %
    n = int(total * 0.20)
    who = rng.choice(n_lines, size=n, p=p)
    other, cat = _numbers(rng, n, msisdns)
    roam = rng.random(n) < 0.03
    frames.append(pl.DataFrame({
        "service": "sms", "direction": rng.choice(np.array(["MO", "MT"]), size=n, p=[0.55, 0.45]),
        "i": who, "other_party": other.astype(str), "t": _times(rng, n, start, days, WEEKDAY_VOICE),
        "duration_s": np.zeros(n, dtype=np.int64), "quantity": np.ones(n, dtype=np.int64),
        "call_outcome": "answered",
        "visited_network": np.where(roam, np.array(VISITED)[rng.integers(0, 5, size=n)], ""),
        "source": "smsc", "cat": cat,
    }))
    usage = pl.concat(frames, how="diagonal")
    data = _data_sessions(rng, int(total * 0.45), n_lines, p, start, days)
    usage = pl.concat([usage, data], how="diagonal")
    ms = pl.Series("msisdn", msisdns.astype(str))
    im = pl.Series("imsi", imsis.astype(str))
    usage = usage.with_columns(ms.gather(usage["i"]).alias("msisdn"), im.gather(usage["i"]).alias("imsi"),
                               pl.from_epoch(pl.col("t"), time_unit="s").dt.replace_time_zone("UTC").alias("start_time"))
    # keep usage inside each line's validity (lines that join or leave mid-month)
    validity = subs.group_by("msisdn").agg(
        pl.col("valid_from").str.to_datetime("%Y-%m-%dT%H:%M:%SZ", time_zone="UTC").min().alias("vf"),
        pl.when(pl.col("valid_to") == "").then(None).otherwise(pl.col("valid_to"))
        .str.to_datetime("%Y-%m-%dT%H:%M:%SZ", time_zone="UTC").max().alias("vt"),
        (pl.col("valid_to") == "").any().alias("open"),
    )
    usage = usage.join(validity, on="msisdn", how="left").filter(
        (pl.col("start_time") >= pl.col("vf")) & (pl.col("open") | (pl.col("start_time") < pl.col("vt")))
    )
    return usage.drop("vf", "vt", "open", "i", "t")


def _data_sessions(rng: np.random.Generator, n: int, n_lines: int, p: np.ndarray, start: datetime,
                   days: int) -> pl.DataFrame:
    """Data records; about 5 % of sessions are long and split by the network into 2-4 partial records."""
    who = rng.choice(n_lines, size=n, p=p)
    t = _times(rng, n, start, days, WEEKDAY_DATA)
    rg = rng.choice(np.array([10, 20, 30], dtype=np.int32), size=n, p=[0.6, 0.3, 0.1])
    is5g = rng.random(n) < 0.4
    slc = np.where(is5g, np.array(SLICES)[rng.choice(3, size=n, p=[0.85, 0.05, 0.10])], "")
    qos = np.where(slc == "2-000002", 80, 9).astype(np.int32)
    up = (rng.lognormal(13, 1.5, size=n)).astype(np.int64)
    down = (rng.lognormal(15, 1.6, size=n) * np.where(rg == 20, 4, 1)).astype(np.int64)
    roam = rng.random(n) < 0.04
    parts = np.where(rng.random(n) < 0.05, rng.integers(2, 5, size=n), 0)
    base = pl.DataFrame({
        "service": "data", "direction": "MO", "i": who, "other_party": "", "t": t,
        "duration_s": np.zeros(n, dtype=np.int64), "uplink_bytes": up, "downlink_bytes": down,
        "call_outcome": "answered", "rating_group": rg, "snssai": slc, "qos_class": qos,
        "apn": np.where(rg == 30, "music.telbill", "internet"),
        "visited_network": np.where(roam, np.array(VISITED)[rng.integers(0, 5, size=n)], ""),
        "charging_id": pl.Series(np.arange(n) + 100_000_000).cast(pl.String), "parts": parts,
        # the 5G standalone core (URLLC and MIoT slices) writes 3GPP BER; the rest goes through pgw-core
        "source": np.where(np.isin(slc, ["2-000002", "3-000003"]), "pgw-5g", "pgw-core"),
    })
    whole = base.filter(pl.col("parts") == 0).with_columns(pl.lit(None, pl.Int32).alias("partial_seq"))
    split = base.filter(pl.col("parts") > 0).with_columns(
        pl.int_ranges(1, pl.col("parts") + 1, dtype=pl.Int32).alias("partial_seq")
    ).explode("partial_seq").with_columns(
        (pl.col("t") + (pl.col("partial_seq") - 1) * 3600).alias("t"),
        (pl.col("uplink_bytes") // pl.col("parts")).alias("uplink_bytes"),
        (pl.col("downlink_bytes") // pl.col("parts")).alias("downlink_bytes"),
    )
    out = pl.concat([whole, split]).with_columns((pl.col("uplink_bytes") + pl.col("downlink_bytes")).alias("quantity"))
    return out.drop("parts")


def to_canonical_text(usage: pl.DataFrame) -> pl.DataFrame:
    """Typed usage -> the canonical CSV columns as text (empty string for null)."""
    exprs = []
    for col in CANONICAL_COLUMNS:
        if col == "start_time":
            exprs.append(pl.col(col).dt.strftime("%Y-%m-%dT%H:%M:%SZ"))
        elif col in usage.columns:
            exprs.append(pl.col(col).cast(pl.String).fill_null(""))
        else:
            exprs.append(pl.lit("").alias(col))
    return usage.select(exprs)


def _csv_bytes(frame: pl.DataFrame) -> bytes:
    buf = io.BytesIO()
    frame.write_csv(buf, quote_style="never")
    return buf.getvalue()


def _gzip(data: bytes) -> bytes:
    return gzip.compress(data, compresslevel=6, mtime=0)


# ----------------------------------------------------------------------------------------------
# files and faults
# ----------------------------------------------------------------------------------------------
SOURCES = {"msc-east": "csv", "msc-west": "csv.gz", "smsc": "csv", "pgw-core": "parquet", "pgw-5g": "ber",
           "fs-voice": "json"}
ASTERISK_SOURCES = frozenset({"msc-west"})
"""Sources whose switch writes Asterisk ``cdr_csv`` (Master.csv, gzipped) instead of canonical CSV."""
SWITCH_FORMATS = {"msc-west": "asterisk_csv", "pgw-5g": "ber_3gpp", "fs-voice": "freeswitch_json"}
"""Sources written in a network format (no header line) instead of the canonical one."""
CGF_FRAMED_FROM = {"pgw-5g": 16}
"""BER sources moved behind a CGF on this day of the month: from then on their files are TS 32.297 framed
(file header + CDR headers); before it they are plain concatenated records, so the demo carries both."""


def _assign_files(usage: pl.DataFrame, rng: np.random.Generator, late: bool) -> pl.DataFrame:
    """File date per record: its own UTC day; some data records arrive 1-3 days late."""
    delay = np.where((usage["source"] == "pgw-core").to_numpy() & (rng.random(usage.height) < 0.01) & late,
                     rng.integers(1, 4, size=usage.height), 0)
    return usage.with_columns((pl.col("start_time").dt.date() + pl.duration(days=pl.Series(delay))).alias("file_date"),
                              pl.Series("late_days", delay))


def generate(out_dir: str | Path, subscribers: int, period: str = "2026-10", seed: int = 1, faults: bool = True,
             per_subscriber: float = 120.0, data_format: str = "parquet") -> GeneratedData:
    """Write a customer base and a month of landing files; see the module docstring."""
    rng = np.random.default_rng(seed)
    out = Path(out_dir)
    landing = out / "landing"
    out.mkdir(parents=True, exist_ok=True)
    accounts, subs = build_customers(subscribers, period, rng)
    result = GeneratedData(out, out / "accounts.csv", out / "subscriptions.csv", landing)
    result.accounts_csv.write_bytes(_csv_bytes(accounts))
    result.subscriptions_csv.write_bytes(_csv_bytes(subs))

    usage = build_usage(subs, period, rng, per_subscriber)
    usage = _assign_files(usage, rng, late=faults)
    if faults:
        unknown = usage.filter(pl.col("service") == "voice").head(5).with_columns(
            (pl.lit(UNKNOWN_MSISDN_BASE) + pl.int_range(0, 5)).cast(pl.String).alias("msisdn"),
            pl.lit("").alias("imsi"), pl.lit("").alias("visited_network"),
            pl.lit("answered").alias("call_outcome"), pl.lit(60, pl.Int64).alias("duration_s"),
            pl.lit(60, pl.Int64).alias("quantity"), pl.lit(1, pl.Int8).alias("unknown_sub"),
        )
        usage = pl.concat([usage.with_columns(pl.lit(0, pl.Int8).alias("unknown_sub")), unknown], how="diagonal")
    else:
        usage = usage.with_columns(pl.lit(0, pl.Int8).alias("unknown_sub"))
    usage = usage.sort("source", "file_date", "start_time", "msisdn", "service", "other_party", "charging_id",
                       "partial_seq", "quantity", nulls_last=True)
    # network record ids where the switch has them (voice and SMS); data is keyed by business fields
    usage = usage.with_columns(
        pl.when((pl.col("service") != "data") | (pl.col("source") == "pgw-5g"))
        .then(pl.col("source").str.to_uppercase().str.replace("-", "") + pl.int_range(0, pl.len()).over("source")
              .cast(pl.String).str.zfill(10))
        .otherwise(pl.lit("")).alias("network_record_id")
    )
    # "csv": every source as plain canonical CSV (benchmarks compare against a bare CSV read)
    fmt = dict.fromkeys(SOURCES, "csv") if data_format == "csv" else dict(SOURCES)
    _write_files(result, usage, fmt, faults, {} if data_format == "csv" else SWITCH_FORMATS)
    result.files.sort()
    write_fault_ledger(result)
    return result


def _write_files(result: GeneratedData, usage: pl.DataFrame, fmt: dict[str, str], faults: bool,
                 switch: dict[str, str] | None = None) -> None:
    """One file per source and day; sources in ``switch`` are written in that network format (no header):
    Asterisk Master.csv in the switch's local time, 3GPP BER pGWRecords, FreeSWITCH mod_json_cdr lines."""
    from pipelines.mediation.readers.asterisk import write_asterisk_csv
    from pipelines.mediation.readers.ber3gpp import encode_pgw_records, frame_32297, split_records
    from pipelines.mediation.readers.freeswitch import write_freeswitch_json
    from pipelines.mediation.sources import source_config

    landing = result.landing_dir
    skip_seq = {("msc-east", 14)} if faults else set()
    carry: list[bytes] = []                           # records re-sent from one file in the next
    for (source,), per_source in usage.partition_by("source", as_dict=True, maintain_order=True).items():
        dates = sorted(per_source["file_date"].unique().to_list())
        seq = 0
        for i, day in enumerate(dates):
            seq += 1
            if (source, i + 1) in skip_seq:          # MISSING_FILE: this sequence number is never delivered
                seq += 1
            network = (switch or {}).get(source)
            rows = per_source.filter(pl.col("file_date") == day)
            if network == "asterisk_csv":  # Asterisk appends a CDR when the call ends: its files are in end order
                rows = rows.with_columns(_end=pl.col("start_time") + pl.duration(
                    seconds=pl.col("duration_s").fill_null(0).clip(lower_bound=0)))  # the end stamp it writes
            rows = rows.sort("_end" if "_end" in rows.columns else "start_time", "start_time", "network_record_id",
                             "msisdn", "charging_id", "partial_seq", nulls_last=True).drop("_end", strict=False)
            ext = fmt[source]
            key = f"{source}/{source}_{seq:06d}_{day:%Y%m%d}.{ext}"
            if (source, i + 1) in skip_seq:
                missing = f"{source}/{source}_{seq - 1:06d}_{day:%Y%m%d}.{ext}"
                result.faults.append(Fault("MISSING_FILE", missing, None, "gap", f"sequence {seq - 1} never delivered"))
            header = 0 if network else 1
            for r in rows.with_row_index("i").filter((pl.col("late_days") > 0) | (pl.col("unknown_sub") == 1)).iter_rows(named=True):
                kind = "UNKNOWN_SUBSCRIBER" if r["unknown_sub"] else "LATE_ARRIVING"
                expected = "suspense:UNKNOWN_SUBSCRIBER" if r["unknown_sub"] else "usage"
                offset = r["i"] + (1 if ext == "parquet" else 1 + header)  # parquet: row number; text: line
                result.faults.append(Fault(kind, key, offset, expected, f"usage of {r['start_time']:%Y-%m-%d}"))
            zone = source_config(source).switch_timezone       # switches log their local wall clock
            if ext == "parquet":
                body = _parquet_bytes(rows)
                lines = None
            elif network == "ber_3gpp":                   # record offsets are bytes: no line faults here
                body = encode_pgw_records(_typed_rows(rows))
                if day.day >= CGF_FRAMED_FROM.get(source, 32):
                    body = frame_32297(split_records(body), sequence=seq, tz=HOME_TZ,
                                       opened=rows["start_time"].min(), last_append=rows["start_time"].max())
                lines = None
            else:
                if header:
                    lines = _csv_bytes(to_canonical_text(rows)).split(b"\n")[:-1]
                elif network == "freeswitch_json":
                    lines = write_freeswitch_json(_typed_rows(rows), zone).split(b"\n")[:-1]
                else:
                    lines = write_asterisk_csv(rows.filter(pl.col("service") == "voice"), zone).split(b"\n")[:-1]
                if faults and header:
                    lines = _inject_line_faults(result, source, i + 1, key, lines, dates, carry)
                body = b"\n".join(lines) + b"\n"
            n_records = rows.height if lines is None else len(lines) - header
            result.records += n_records
            if faults and source == "msc-west" and i + 1 == 9:        # CORRUPT_GZIP: truncated in transit
                body = _gzip(body)[: len(_gzip(body)) // 2]
                result.faults.append(Fault("CORRUPT_GZIP", key, None, "quarantine:CORRUPT_GZIP", "truncated gzip"))
            elif ext.endswith(".gz"):
                body = _gzip(body)
            _write(landing, key, body, result, n_records)
            if faults and source == "smsc" and i + 1 == 10:           # WHOLE_FILE_RESENT under the next free seq
                resend = f"{source}/{source}_{len(dates) + 1:06d}_{day:%Y%m%d}.{ext}"
                _write(landing, resend, body, result, n_records)
                result.records += n_records
                result.faults.append(Fault("WHOLE_FILE_RESENT", resend, None, "duplicate_file", f"byte copy of {key}"))
            if faults and source == "msc-west" and i + 1 == 4:        # REPEATED_SEQUENCE: another file, same seq
                other = f"{source}/{source}_{seq:06d}_{day + timedelta(days=1):%Y%m%d}.{ext}"
                # the first billable call of the file is re-sent (an unanswered one would be filtered, not a duplicate)
                j = next((n for n, r in enumerate(rows.iter_rows(named=True))
                          if r["call_outcome"] == "answered" and r["duration_s"] > 0), None)
                expected = "duplicate" if j is not None else "filtered"   # no billable call: the copy is filtered
                j = j or 0
                extra = [*lines[:header], lines[header + j]]
                _write(landing, other, _gzip(b"\n".join(extra) + b"\n"), result, 1)
                result.records += 1
                result.faults.append(Fault("REPEATED_SEQUENCE", other, None, "repeated_sequence",
                                           f"sequence {seq} also used by {key}"))
                result.faults.append(Fault("DUP_ACROSS_FILES", other, 1 + header, expected,
                                           f"same record as {key} line {1 + header + j}"))


def _typed_rows(rows: pl.DataFrame) -> pl.DataFrame:
    """The canonical columns with empty text as null (what the binary/JSON writers and Parquet expect)."""
    return rows.select(
        pl.col(c) if c in rows.columns else pl.lit(None, pl.String).alias(c) for c in CANONICAL_COLUMNS
    ).with_columns(pl.col(c).replace("", None) for c in ("other_party", "snssai", "visited_network", "network_record_id", "imsi")
                   if c in CANONICAL_COLUMNS)


def _parquet_bytes(rows: pl.DataFrame) -> bytes:
    buf = io.BytesIO()
    typed = _typed_rows(rows)
    typed.write_parquet(buf, compression="zstd", statistics=False)
    return buf.getvalue()


def _write(landing: Path, key: str, body: bytes, result: GeneratedData, records: int) -> None:
    result.records_by_file[key] = records
    path = landing / key
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(body)
    result.files.append(key)


def _replace_field(line: bytes, col: str, value: bytes) -> bytes:
    fields = line.split(b",")
    fields[CANONICAL_COLUMNS.index(col)] = value
    return b",".join(fields)


def _inject_line_faults(result: GeneratedData, source: str, nth: int, key: str, lines: list[bytes],
                        dates: list, carry: list[bytes]) -> list[bytes]:
    """Record-level faults in a few text files; each one is added to the ledger with its line number."""
    add = result.faults.append
    header, body = lines[0], lines[1:]
    if len(body) < 8:
        return lines
    if source == "msc-east" and nth == 3:          # DUP_WITHIN_FILE: three records repeated at the end
        for j in (0, 1, 2):
            body.append(body[j])
            add(Fault("DUP_WITHIN_FILE", key, len(body) + 1, "duplicate", f"copy of line {j + 2}"))
    if source == "msc-east" and nth == 5:          # MALFORMED_LINE and INVALID_FIELD
        body[3] = b",".join(body[3].split(b",")[:7])
        add(Fault("MALFORMED_LINE", key, 5, "rejected:MALFORMED_LINE", "7 of 19 fields"))
        body[4] = _replace_field(body[4], "duration_s", b"12x")
        add(Fault("INVALID_FIELD", key, 6, "rejected:INVALID_FIELD", "duration_s is not a number"))
    if source == "msc-east" and nth == 6:          # NEGATIVE_DURATION, ABSURD_DURATION, BAD_MSISDN
        body[2] = _replace_field(_replace_field(body[2], "duration_s", b"-30"), "quantity", b"-30")
        add(Fault("NEGATIVE_DURATION", key, 4, "rejected:NEGATIVE_DURATION"))
        body[5] = _replace_field(_replace_field(body[5], "duration_s", b"200000"), "quantity", b"200000")
        add(Fault("ABSURD_DURATION", key, 7, "rejected:ABSURD_DURATION"))
        body[6] = _replace_field(body[6], "msisdn", b"49151ABC1234")
        add(Fault("BAD_MSISDN", key, 8, "rejected:BAD_MSISDN"))
    if source == "smsc" and nth == 3:              # FUTURE_TIMESTAMP: later than the file's own date
        future = (datetime.combine(dates[2], datetime.min.time()) + timedelta(days=9)).strftime("%Y-%m-%dT%H:%M:%SZ")
        body[1] = _replace_field(body[1], "start_time", future.encode())
        add(Fault("FUTURE_TIMESTAMP", key, 3, "rejected:FUTURE_TIMESTAMP", future))
    if source == "smsc" and nth == 7:              # DUP_ACROSS_FILES: last 3 records re-sent in the next file
        carry[:] = body[-3:]
    if source == "smsc" and nth == 8:
        for j, rec in enumerate(carry):
            body.append(rec)
            add(Fault("DUP_ACROSS_FILES", key, len(body) + 1, "duplicate", f"re-sent from the previous file ({j + 1})"))
    if source == "smsc" and nth == 12:             # BAD_ENCODING: a Latin-1 byte in a UTF-8 file
        body[2] = _replace_field(body[2], "apn", "m\u00fcnchen.sms".encode("latin-1"))
        add(Fault("BAD_ENCODING", key, 4, "rejected:BAD_ENCODING", "0xFC in apn"))
    return [header, *body]


def write_fault_ledger(data: GeneratedData) -> Path:
    """The fault ledger as ``faults.csv`` beside the generated files."""
    path = data.out_dir / "faults.csv"
    frame = pl.DataFrame([f.__dict__ for f in data.faults],
                         schema={"kind": pl.String, "file": pl.String, "line": pl.Int64, "expected": pl.String,
                                 "detail": pl.String})
    frame.write_csv(path)
    return path


def upload_landing(data: GeneratedData, settings: Settings) -> int:
    """Copy the generated landing files into the configured landing area (local folder or S3)."""
    store = open_store(settings.landing_uri, settings.s3)
    for key in data.files:
        store.write_bytes(key, (data.landing_dir / key).read_bytes())
    return len(data.files)
