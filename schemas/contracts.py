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
    # appended (issue 2 follow-up): EUR the prepaid charging sidecar debited (canonical CSV extra column
    # of source chf-prepaid); null for every other source
    "charged_amount": AMOUNT,
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
    # appended (issue 2 follow-up): dealer who sold the line (tariffs/dealers.csv), null = direct sale
    "dealer_id": pl.String,
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

# --- collections area (payments intake, allocation, dunning) -----------------------------------
# Published payment events (dataset "payments", partition file_sha=<first 16 hex of the file sha256>).
# One row per matched payment, reversal, chargeback or prepaid top-up; amounts are signed (reversals and
# chargebacks negative) so that the sum per account over a date range is the net money received.
PAYMENT_SCHEMA: dict[str, pl.DataType] = {
    "payment_id": pl.String,           # stable: digest(kind, source_payment_id)
    "source_payment_id": pl.String,    # the bank / processor / wallet transaction id
    "kind": pl.String,                 # bank | card | wallet (the file layout)
    "channel": pl.String,              # bank_transfer | card | wallet | retail | dealer
    "event_type": pl.String,           # payment | reversal | chargeback
    "purpose": pl.String,              # bill_payment | top_up
    "original_payment_id": pl.String,  # payment reversed / charged back, null otherwise
    "account_id": pl.String,
    "invoice_id": pl.String,           # invoice named by the payment reference, null if matched by account
    "match_method": pl.String,         # reference | account | msisdn | original
    "payment_reference": pl.String,    # reference found on the payment, null when none
    "received_date": pl.Date,          # value date of the money (bank) / settlement date (card, wallet)
    "amount": CURRENCY_AMOUNT,         # signed
    "currency": pl.String,
    "payer_name": pl.String,
    "source_file": pl.String,
    "file_sha256": pl.String,
    "record_offset": pl.Int64,         # line number in the file (header is line 1)
}

# Every line of every imported payment file and where it ended (dataset "collections/payment_intake").
PAYMENT_INTAKE_SCHEMA: dict[str, pl.DataType] = {
    **PAYMENT_SCHEMA,
    "subscription_id": pl.String,      # line a top-up is for (wallet / retail top-ups), null otherwise
    "msisdn": pl.String,               # MSISDN quoted on a wallet / retail line, null otherwise
    "account_ref": pl.String,          # account number quoted by the payer, as written
    "remittance_info": pl.String,      # bank remittance text, as written (searched for references)
    "original_source_id": pl.String,   # source id of the payment a reversal / chargeback undoes
    "outcome": pl.String,              # matched | top_up | duplicate | suspense
    "reason_code": pl.String,          # null when matched / top_up
    "message": pl.String,
}

# Prepaid top-ups paid through wallet / retail / dealer channels (dataset "topups", partition file_sha=...);
# the bill cycle shows them in the prepaid summary of a convergent bill. Not bill payments.
TOPUP_SCHEMA: dict[str, pl.DataType] = {
    "payment_id": pl.String,
    "account_id": pl.String,
    "subscription_id": pl.String,
    "msisdn": pl.String,
    "topup_date": pl.Date,
    "amount": CURRENCY_AMOUNT,
    "currency": pl.String,
    "channel": pl.String,
    "source_file": pl.String,
    "record_offset": pl.Int64,
}

# How payments settle invoices (dataset "collections/allocations", no partition key: the published run is the
# snapshot as of the latest daily collections run, so summing it counts each payment once; the run's as_of
# is a column and is in the manifest's extra; earlier days' snapshots stay as unpublished runs).
PAYMENT_ALLOCATION_SCHEMA: dict[str, pl.DataType] = {
    "account_id": pl.String,
    "payment_id": pl.String,           # payment or credit note (invoice_id of the credit note)
    "invoice_id": pl.String,           # null for unapplied account credit
    "allocation_date": pl.Date,
    "amount": CURRENCY_AMOUNT,
    "allocation_type": pl.String,      # allocated | credit
}

# Dunning ladder position per account after a daily run (dataset "collections/dunning_state").
DUNNING_STATE_SCHEMA: dict[str, pl.DataType] = {
    "account_id": pl.String,
    "as_of": pl.Date,
    "step": pl.Int32,                  # 0 = normal
    "step_code": pl.String,
    "step_since": pl.Date,
    "barring": pl.String,              # none | outgoing | soft | hard
    "overdue": CURRENCY_AMOUNT,
    "days_past_due": pl.Int32,
    "excluded_reason": pl.String,      # null | segment:<s> | dispute | promise_to_pay
}

# Bar / unbar orders for the provisioning gateway (dataset "collections/provisioning_orders").
PROVISIONING_ORDER_SCHEMA: dict[str, pl.DataType] = {
    "order_id": pl.String,
    "as_of": pl.Date,
    "account_id": pl.String,
    "subscription_id": pl.String,
    "msisdn": pl.String,
    "action": pl.String,               # bar_outgoing | suspend | disconnect | unbar
    "from_barring": pl.String,
    "to_barring": pl.String,
    "reason": pl.String,
}

# Invoice lines (bill cycle output, dataset "invoice_lines", partition period=YYYY-MM). Precise and
# rounded amounts side by side; an invoice's subtotal is the sum of ``amount`` over its lines.
INVOICE_LINE_SCHEMA: dict[str, pl.DataType] = {
    "invoice_id": pl.String,
    "line_no": pl.Int32,             # 1.. in the order printed on the bill
    "account_id": pl.String,
    "period": pl.String,
    "line_type": pl.String,          # recurring | usage | discount | one_off | commitment | adjustment
    "charge_code": pl.String,
    "description": pl.String,
    "subscription_id": pl.String,    # null for account-level lines
    "msisdn": pl.String,
    "plan_id": pl.String,
    "service": pl.String,            # usage lines: one of SERVICES
    "quantity": pl.Int64,            # usage base units, or days for recurring lines
    "quantity_included": pl.Int64,
    "quantity_charged": pl.Int64,
    "unit": pl.String,
    "service_start": pl.Date,        # [start, end) the line covers, account's local dates
    "service_end": pl.Date,
    "amount_precise": AMOUNT,
    "amount": CURRENCY_AMOUNT,       # amount_precise rounded once, half-up, to the minor unit
    "currency": pl.String,
    "tax_category": pl.String,       # telecom | device | exempt
    "gl_account": pl.String,         # revenue account of the general-ledger journal
    "ref": pl.String,                # discount id, imported item ref, commitment id
}

# Tax breakdown per invoice (dataset "invoice_tax_lines", partition period=YYYY-MM).
INVOICE_TAX_LINE_SCHEMA: dict[str, pl.DataType] = {
    "invoice_id": pl.String,
    "account_id": pl.String,
    "period": pl.String,
    "jurisdiction": pl.String,
    "tax_code": pl.String,
    "name": pl.String,
    "tax_category": pl.String,
    "rate": AMOUNT,                  # fraction, e.g. 0.190000000
    "base": CURRENCY_AMOUNT,         # sum of rounded lines of the category (+ earlier taxes if compound)
    "amount_precise": AMOUNT,
    "amount": CURRENCY_AMOUNT,
    "currency": pl.String,
    "gl_account": pl.String,
}

# --- settlement and assurance area ---------------------------------------------------------------
# Partner statement lines (dataset "settlement/statement_lines", partition period=YYYY-MM); one line per
# partner, direction, service, traffic type, band and currency; see docs/settlement.md for the rounding.
SETTLEMENT_STATEMENT_LINE_SCHEMA: dict[str, pl.DataType] = {
    "statement_id": pl.String,
    "period": pl.String,
    "partner_id": pl.String,
    "partner_type": pl.String,       # roaming | interconnect | content | dealer
    "partner_name": pl.String,
    "direction": pl.String,          # payable (we owe) | receivable (they owe)
    "service": pl.String,            # usage service, or activation | chargeback | residual for dealers
    "traffic_type": pl.String,
    "band": pl.String,
    "records": pl.Int64,
    "quantity": pl.Int64,
    "minutes": AMOUNT,               # voice only: seconds / 60, exact to 9 places
    "basis_amount": AMOUNT,          # revenue basis for shares (content, dealer residual)
    "share_pct": AMOUNT,
    "currency": pl.String,
    "amount_precise": AMOUNT,
    "amount": CURRENCY_AMOUNT,       # rounded HALF_UP to the line currency's minor unit
    "fx_rate": AMOUNT,               # EUR per unit of currency, valid on the period's first day
    "amount_eur": CURRENCY_AMOUNT,   # precise amount x fx_rate, rounded HALF_UP to cents
    "rate_ids": pl.String,           # the IOT / interconnect / share rates behind the line (space separated)
}

# One row per partner statement (dataset "settlement/statements", partition period=YYYY-MM).
SETTLEMENT_STATEMENT_SCHEMA: dict[str, pl.DataType] = {
    "statement_id": pl.String,
    "period": pl.String,
    "partner_id": pl.String,
    "partner_type": pl.String,
    "partner_name": pl.String,
    "lines": pl.Int64,
    "records": pl.Int64,
    "payable_eur": CURRENCY_AMOUNT,
    "receivable_eur": CURRENCY_AMOUNT,
    "net_eur": CURRENCY_AMOUNT,      # receivable - payable: positive means the partner owes us
}

# Revenue-assurance findings (dataset "assurance/findings", partition period=YYYY-MM): one row per problem
# record, file or subscription a control found; drill down with the control's warehouse view.
ASSURANCE_FINDING_SCHEMA: dict[str, pl.DataType] = {
    "control_id": pl.String, "period": pl.String, "finding_type": pl.String, "source": pl.String,
    "source_file": pl.String, "record_id": pl.String, "account_id": pl.String, "subscription_id": pl.String,
    "service": pl.String, "value_eur": AMOUNT, "age_days": pl.Int32, "detail": pl.String,
}
