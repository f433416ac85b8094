"""Column contracts shared by every stage. Stages may add columns; they never rename these.

Instants are UTC microseconds; quantities are integers in base units (seconds, bytes, events);
money is ``Decimal(38, 9)`` (precise) or ``Decimal(18, 2)``-style currency amounts.
"""

from __future__ import annotations

import polars as pl

UTC_TS = pl.Datetime("us", "UTC")
AMOUNT = pl.Decimal(38, 9)

SERVICES = ("voice", "sms", "data", "event")
"""Service of a usage record. ``event`` covers API and content events priced per unit."""

CALL_OUTCOMES = ("answered", "unanswered", "busy", "failed")
DIRECTIONS = ("MO", "MT")
"""Mobile originated / terminated, seen from the served subscriber."""

RECORD_OUTCOMES = ("usage", "filtered", "rejected", "duplicate", "suspense")
"""Where every received record ends in mediation (conservation: in = sum of these)."""

# Normalised usage: one row per billable (or filtered/suspense) usage event, after mediation.
USAGE_SCHEMA: dict[str, pl.DataType] = {
    "record_id": pl.String,          # stable id: digest of source + dedup key; `telbill explain` takes it
    "dedup_key": pl.String,          # business key used for duplicate detection
    "source": pl.String,             # landing source name, e.g. "msc-east"
    "source_file": pl.String,        # landing key of the file the record came from
    "file_sha256": pl.String,
    "record_offset": pl.Int64,       # line number (text) or byte offset (binary) in the file
    "network_record_id": pl.String,  # the network's own id where the format has one
    "service": pl.String,            # one of SERVICES
    "direction": pl.String,          # one of DIRECTIONS
    "msisdn": pl.String,             # served subscriber, E.164 digits without '+'
    "imsi": pl.String,
    "other_party": pl.String,        # called number for MO voice/SMS, E.164 digits (may be empty for data)
    "start_time": UTC_TS,
    "duration_s": pl.Int64,          # voice seconds (0 for sms/data events)
    "quantity": pl.Int64,            # base units: seconds (voice), events (sms/event), bytes (data)
    "uplink_bytes": pl.Int64,
    "downlink_bytes": pl.Int64,
    "call_outcome": pl.String,       # CALL_OUTCOMES for voice, "answered" otherwise
    "rating_group": pl.Int32,        # data/content rating group (3GPP), null for voice/sms
    "snssai": pl.String,             # 5G slice "SST-SD", e.g. "1-000001"; null when not 5G
    "qos_class": pl.Int32,           # 5QI / QCI
    "apn": pl.String,                # APN / DNN
    "visited_network": pl.String,    # TADIG of the visited network when roaming, null at home
    "charging_id": pl.String,        # session/charging id: ties partial records together
    "partial_seq": pl.Int32,         # sequence of a partial record within a session, null if whole
    "usage_date": pl.Date,           # UTC date of start_time: the lake partition
    # guiding
    "subscription_id": pl.String,
    "account_id": pl.String,
    "plan_id": pl.String,
    "payment_type": pl.String,       # "prepaid" | "postpaid"
}

# Customer master data (telbill customers import).
ACCOUNT_SCHEMA: dict[str, pl.DataType] = {
    "account_id": pl.String,
    "name": pl.String,
    "currency": pl.String,
    "timezone": pl.String,
    "bill_cycle_day": pl.Int32,      # 1..28
    "tax_jurisdiction": pl.String,
    "payment_terms_days": pl.Int32,
    "address_line1": pl.String,
    "city": pl.String,
    "postcode": pl.String,
    "country": pl.String,
    "email": pl.String,
    "phone": pl.String,
    "parent_account_id": pl.String,  # family / business group, null for standalone
    "segment": pl.String,            # consumer | business | vip | government
    "billing_entity": pl.String,     # legal entity issuing the invoice (numbering series)
}

SUBSCRIPTION_SCHEMA: dict[str, pl.DataType] = {
    "subscription_id": pl.String,
    "account_id": pl.String,
    "msisdn": pl.String,
    "imsi": pl.String,
    "plan_id": pl.String,
    "payment_type": pl.String,       # prepaid | postpaid
    "valid_from": UTC_TS,            # inclusive
    "valid_to": UTC_TS,              # exclusive, null = open-ended
}

# Rated usage (rating output): every usage row + how it was charged.
RATED_SCHEMA: dict[str, pl.DataType] = {
    "record_id": pl.String,
    "account_id": pl.String,
    "subscription_id": pl.String,
    "plan_id": pl.String,
    "payment_type": pl.String,
    "service": pl.String,
    "start_time": UTC_TS,
    "usage_date": pl.Date,
    "bill_period": pl.String,        # YYYY-MM of the account's bill period the usage falls in
    "quantity": pl.Int64,
    "quantity_included": pl.Int64,   # covered by an allowance
    "quantity_charged": pl.Int64,    # billed at a rate (after increments)
    "charge": AMOUNT,                # precise charge in the tariff currency, >= 0
    "currency": pl.String,
    "destination_id": pl.String,
    "band": pl.String,               # time band (peak/offpeak/weekend/holiday)
    "rate_id": pl.String,
    "allowance_id": pl.String,
    "tariff_version": pl.String,     # catalogue version the record was rated with
}

SETTLEMENT_ENTRY_SCHEMA: dict[str, pl.DataType] = {
    "record_id": pl.String,
    "partner_id": pl.String,         # TADIG for roaming, carrier id for interconnect, partner id for content
    "partner_type": pl.String,       # roaming | interconnect | content
    "direction": pl.String,          # payable (we owe) | receivable (they owe)
    "service": pl.String,
    "start_time": UTC_TS,
    "usage_date": pl.Date,
    "quantity": pl.Int64,
    "amount": AMOUNT,
    "currency": pl.String,
    "rate_id": pl.String,
    "band": pl.String,
}

# What a format reader emits per record (before record ids, dedup keys and guiding).
RAW_USAGE_SCHEMA: dict[str, pl.DataType] = {
    k: v for k, v in USAGE_SCHEMA.items()
    if k not in {"record_id", "dedup_key", "file_sha256", "usage_date", "subscription_id", "account_id",
                 "plan_id", "payment_type"}
}

# Columns of the canonical CSV format (header required; start_time ISO 8601 UTC, e.g.
# 2026-10-03T08:15:00Z). Charging records from the prepaid sidecar use it too.
CANONICAL_COLUMNS: tuple[str, ...] = (
    "network_record_id", "service", "direction", "msisdn", "imsi", "other_party", "start_time",
    "duration_s", "quantity", "uplink_bytes", "downlink_bytes", "call_outcome", "rating_group",
    "snssai", "qos_class", "apn", "visited_network", "charging_id", "partial_seq",
)

REJECT_SCHEMA: dict[str, pl.DataType] = {
    "source": pl.String,
    "source_file": pl.String,
    "record_offset": pl.Int64,
    "reason_code": pl.String,        # e.g. MALFORMED_LINE, BAD_ENCODING, NEGATIVE_DURATION
    "message": pl.String,            # human sentence
    "raw": pl.String,                # raw text of the record (hex for binary formats)
}

CURRENCY_AMOUNT = pl.Decimal(18, 2)
"""An amount rounded to the currency minor unit (invoice totals, payments)."""

# Invoice header (bill cycle output, dataset "invoices", partition period=YYYY-MM).
INVOICE_SCHEMA: dict[str, pl.DataType] = {
    "invoice_id": pl.String,         # stable: digest of account + period + cycle run inputs
    "invoice_number": pl.String,     # gapless per billing entity and series, set at finalisation
    "account_id": pl.String,
    "billing_entity": pl.String,
    "period": pl.String,             # YYYY-MM
    "period_start": pl.Date,         # [start, end) in the account's time zone
    "period_end": pl.Date,
    "status": pl.String,             # draft | finalised | voided
    "kind": pl.String,               # invoice | credit_note
    "issue_date": pl.Date,
    "due_date": pl.Date,
    "currency": pl.String,
    "subtotal": CURRENCY_AMOUNT,     # sum of rounded lines before tax
    "tax_total": CURRENCY_AMOUNT,
    "total": CURRENCY_AMOUNT,        # subtotal + tax_total (this invoice only)
    "previous_balance": CURRENCY_AMOUNT,
    "payments_received": CURRENCY_AMOUNT,
    "amount_due": CURRENCY_AMOUNT,   # previous_balance - payments_received + total
    "payment_reference": pl.String,  # what the customer quotes when paying (matched by collections)
}
