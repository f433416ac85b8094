"""Payment file layouts (bank statement, card settlement, wallet/retail) parsed to one event shape.

Each reader turns a file's text into :class:`ParsedLine` items: either a payment event in the
canonical shape or a reason why the line cannot be read. A bad line never stops the file. The
layouts are documented in ``docs/collections.md``.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from pipelines.common.money import MoneyError, minor_units, money

KINDS = ("bank", "card", "wallet")

BANK_COLUMNS = ("transaction_id", "booking_date", "value_date", "transaction_code", "amount", "currency",
                "counterparty_name", "counterparty_iban", "remittance_info", "original_transaction_id")
CARD_COLUMNS = ("psp_reference", "settlement_date", "type", "card_brand", "masked_pan", "gross_amount", "fee",
                "net_amount", "currency", "merchant_reference", "account_ref", "original_psp_reference")
WALLET_COLUMNS = ("txn_id", "txn_time", "channel", "agent_id", "purpose", "msisdn", "account_ref", "reference",
                  "amount", "currency", "status", "original_txn_id")
LAYOUT_COLUMNS = {"bank": BANK_COLUMNS, "card": CARD_COLUMNS, "wallet": WALLET_COLUMNS}


@dataclass(frozen=True)
class PaymentEvent:
    """One money movement as the file states it (before matching)."""

    source_payment_id: str
    channel: str
    event_type: str                  # payment | reversal | chargeback
    purpose: str                     # bill_payment | top_up
    original_source_id: str | None
    received_date: date
    amount: Decimal                  # signed: reversals and chargebacks are negative
    currency: str
    payment_reference: str | None    # structured reference, or None
    remittance_text: str             # free text to search for a reference (bank)
    account_ref: str | None          # customer number quoted by the payer
    msisdn: str | None
    payer_name: str


@dataclass(frozen=True)
class ParsedLine:
    line_no: int
    raw: str
    event: PaymentEvent | None
    reason_code: str | None = None
    message: str | None = None


class LineError(ValueError):
    """A line that cannot be read; carries a reason code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def _date(value: str, field: str) -> date:
    text = value.strip()
    try:
        return datetime.fromisoformat(text).date() if "T" in text else date.fromisoformat(text)
    except ValueError as exc:
        raise LineError("BAD_DATE", f"{field} {value!r} is not an ISO date") from exc


def _amount(value: str, currency: str, field: str) -> Decimal:
    try:
        amount = money(value)
    except MoneyError as exc:
        raise LineError("BAD_AMOUNT", f"{field} {value!r} is not an amount") from exc
    try:
        places = minor_units(currency)
    except MoneyError as exc:
        raise LineError("UNKNOWN_CURRENCY", f"currency {currency!r} is not supported") from exc
    if amount != amount.quantize(Decimal(1).scaleb(-places)):
        raise LineError("BAD_AMOUNT", f"{field} {value!r} has more than {places} decimals for {currency}")
    return amount


def _opt(value: str | None) -> str | None:
    text = (value or "").strip()
    return text or None


def _bank(row: dict[str, str]) -> PaymentEvent:
    code = row["transaction_code"].strip().upper()
    currency = row["currency"].strip().upper()
    amount = _amount(row["amount"], currency, "amount")
    if code == "CRDT":
        event_type, original = "payment", None
        if amount <= 0:
            raise LineError("BAD_AMOUNT", f"a CRDT credit transfer must be positive, got {amount}")
    elif code == "RTRN":
        event_type, original = "reversal", _opt(row["original_transaction_id"])
        if amount >= 0:
            raise LineError("BAD_AMOUNT", f"a RTRN return must be negative, got {amount}")
        if original is None:
            raise LineError("MISSING_ORIGINAL", "a RTRN return must name original_transaction_id")
    else:
        raise LineError("UNKNOWN_TRANSACTION_CODE", f"transaction_code {code!r} is not CRDT or RTRN")
    return PaymentEvent(
        source_payment_id=row["transaction_id"].strip(), channel="bank_transfer", event_type=event_type,
        purpose="bill_payment", original_source_id=original, received_date=_date(row["value_date"], "value_date"),
        amount=amount, currency=currency, payment_reference=None, remittance_text=row["remittance_info"] or "",
        account_ref=None, msisdn=None, payer_name=(row["counterparty_name"] or "").strip(),
    )


def _card(row: dict[str, str]) -> PaymentEvent:
    kind = row["type"].strip().upper()
    currency = row["currency"].strip().upper()
    gross = _amount(row["gross_amount"], currency, "gross_amount")
    types = {"SALE": "payment", "REFUND": "reversal", "CHARGEBACK": "chargeback"}
    if kind not in types:
        raise LineError("UNKNOWN_TRANSACTION_CODE", f"type {kind!r} is not SALE, REFUND or CHARGEBACK")
    if gross <= 0:
        raise LineError("BAD_AMOUNT", f"gross_amount must be positive (the type gives the sign), got {gross}")
    original = _opt(row["original_psp_reference"])
    if kind != "SALE" and original is None:
        raise LineError("MISSING_ORIGINAL", f"a {kind} must name original_psp_reference")
    return PaymentEvent(
        source_payment_id=row["psp_reference"].strip(), channel="card", event_type=types[kind],
        purpose="bill_payment", original_source_id=original if kind != "SALE" else None,
        received_date=_date(row["settlement_date"], "settlement_date"),
        amount=gross if kind == "SALE" else -gross, currency=currency,
        payment_reference=_opt(row["merchant_reference"]), remittance_text="",
        account_ref=_opt(row["account_ref"]), msisdn=None, payer_name="",
    )


def _wallet(row: dict[str, str]) -> PaymentEvent:
    status = row["status"].strip().upper()
    channel = row["channel"].strip().lower()
    if channel not in {"wallet", "retail", "dealer"}:
        raise LineError("UNKNOWN_CHANNEL", f"channel {channel!r} is not wallet, retail or dealer")
    purposes = {"BILL": "bill_payment", "TOPUP": "top_up"}
    purpose = purposes.get(row["purpose"].strip().upper())
    if purpose is None:
        raise LineError("UNKNOWN_PURPOSE", f"purpose {row['purpose']!r} is not BILL or TOPUP")
    currency = row["currency"].strip().upper()
    amount = _amount(row["amount"], currency, "amount")
    if amount <= 0:
        raise LineError("BAD_AMOUNT", f"amount must be positive (status VOIDED gives the sign), got {amount}")
    if status not in {"SUCCESS", "VOIDED"}:
        raise LineError("UNKNOWN_TRANSACTION_CODE", f"status {status!r} is not SUCCESS or VOIDED")
    original = _opt(row["original_txn_id"])
    if status == "VOIDED" and original is None:
        raise LineError("MISSING_ORIGINAL", "a VOIDED line must name original_txn_id")
    return PaymentEvent(
        source_payment_id=row["txn_id"].strip(), channel=channel,
        event_type="payment" if status == "SUCCESS" else "reversal", purpose=purpose,
        original_source_id=original if status == "VOIDED" else None,
        received_date=_date(row["txn_time"], "txn_time"), amount=amount if status == "SUCCESS" else -amount,
        currency=currency, payment_reference=_opt(row["reference"]), remittance_text="",
        account_ref=_opt(row["account_ref"]), msisdn=_opt(row["msisdn"]), payer_name="",
    )


READERS: dict[str, Callable[[dict[str, str]], PaymentEvent]] = {"bank": _bank, "card": _card, "wallet": _wallet}


class LayoutError(ValueError):
    """The file as a whole does not have the layout it was imported as."""


def parse_payment_file(data: bytes, kind: str) -> list[ParsedLine]:
    """Every data line of a payment file, parsed or with the reason it could not be."""
    if kind not in READERS:
        raise LayoutError(f"unknown payment file kind {kind!r}; use one of {', '.join(KINDS)}")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise LayoutError(f"{kind} payment files must be UTF-8: {exc}") from exc
    lines = text.splitlines()
    if not lines:
        raise LayoutError("the payment file is empty (a header line is required)")
    header = next(csv.reader([lines[0]]))
    missing = [c for c in LAYOUT_COLUMNS[kind] if c not in header]
    if missing:
        raise LayoutError(f"{kind} payment file lacks columns {missing}; expected {list(LAYOUT_COLUMNS[kind])}")
    out: list[ParsedLine] = []
    reader = READERS[kind]
    for line_no, raw in enumerate(lines[1:], start=2):
        if not raw.strip():
            continue
        values = next(csv.reader(io.StringIO(raw)), [])
        if len(values) != len(header):
            out.append(ParsedLine(line_no, raw, None, "MALFORMED_LINE",
                                  f"{len(values)} fields where the header has {len(header)}"))
            continue
        row = dict(zip(header, values, strict=True))
        try:
            event = reader(row)
        except LineError as exc:
            out.append(ParsedLine(line_no, raw, None, exc.code, str(exc)))
            continue
        if not event.source_payment_id:
            out.append(ParsedLine(line_no, raw, None, "MISSING_ID", "the line has no transaction id"))
            continue
        out.append(ParsedLine(line_no, raw, event))
    return out
