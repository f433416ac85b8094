"""3GPP TS 32.298 ASN.1 BER CDRs: PGW/SGW records (data) and MSC MO/MT call records (voice).

Records are context-tagged SETs: ``pGWRecord [79]``, ``sGWRecord [78]`` (GPRSRecord) or
``moCallRecord [0]``, ``mtCallRecord [1]`` (CSRecord). A file is either

* plain concatenated records; runs of 0x00/0xFF filler between records (block padding) are skipped; or
* TS 32.297 §6.1 framed (what CGFs deliver): a CDR file header, then each record behind a CDR header
  (:mod:`pipelines.mediation.readers.ts32297`). Each CDR is taken by its CDR header length; its
  ``record_offset`` (rows and rejects) is the file offset of its CDR header, and every header fact
  (number of CDRs, file length, lost CDR indicator, data record format) is checked: see
  :func:`_read_framed`. :func:`frame_32297` writes such files.

Decoding, per record (a per-record Python loop; pycrate does the ASN.1):

1. frame the record's TLV ourselves (byte offset = ``record_offset``);
2. walk its child TLVs and drop every child whose tag the Rel-16 schema does not know, or whose
   constructed/primitive form clashes with the schema's type: real switches always carry vendor
   extensions or release skew (see refdata/STANDARDS.md §4), and one vendor tag must not lose a CDR;
3. decode the rest with pycrate's compiled TS 32.298 V16 modules and map to raw usage.

A record that still fails is a ``BER_DECODE_ERROR`` reject with its byte offset and hex; if the
framing itself is lost (a length running past the end of the file), the remainder of the file is
one reject and the records before it are kept.

Field mapping (docs/formats.md has the full table): served IMSI/MSISDN are TBCD (MSISDN and
called/calling numbers after their TON/NPI octet); ``recordOpeningTime``/``answerTime``/
``seizureTime`` are BCD ``YYMMDDhhmmss`` + sign + ``hhmm`` UTC offset; a PGW record yields one row per
service data container (rating group, FBC uplink/downlink), or, without containers, one row with the
sum of ``listOfTrafficVolumes``; ``chargingID`` -> charging_id; ``recordSequenceNumber`` (PGW/SGW)
or ``sequenceNumber`` (MSC) -> partial_seq; ``servingNodePLMNIdentifier`` -> visited TADIG.

Fields the 32.298 records cannot hold (a 5G slice on a PGW record, the visited network of a voice
call, a non-numeric network record id) travel in a ``recordExtensions`` ManagementExtension with
the telbill OID (:data:`TELBILL_OID`) whose information is a UTF8String of canonical JSON. When
present its values take precedence; real switch files simply do not have it.
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

import polars as pl

from pipelines.mediation.readers import (
    OffsetError,
    ParsedFile,
    UnreadableFile,
    conform_records,
    register,
    reject_rows,
    ts32297,
)
from pipelines.mediation.readers.ts32297 import frame_32297 as frame_32297  # beside the encoders below

# ---------------------------------------------------------------------------------- reference data

PLMN_TADIG: dict[str, str] = {
    "26202": "DEUTB",   # home network (Telbill Mobile): not roaming
    "20801": "FRAF1",
    "21407": "ESPTE",
    "23410": "GBRCN",
    "310410": "USAAT",
    "28601": "TURTC",
}
"""MCC+MNC of the serving node -> TADIG code. An unlisted PLMN is passed on as its MCC+MNC digits so
rating puts it in suspense instead of billing roaming usage as home usage."""
HOME_TADIG = "DEUTB"
HOME_PLMN = "26202"
TADIG_PLMN = {tadig: plmn for plmn, tadig in PLMN_TADIG.items()}

TELBILL_OID = "2.25.329800735698586629295641978511506172918"
"""UUID-based OID (ITU-T X.667, no registration) naming the telbill ManagementExtension."""

RECORD_TAGS = {79: ("gprs", "pGWRecord"), 78: ("gprs", "sGWRecord"), 0: ("cs", "moCallRecord"),
               1: ("cs", "mtCallRecord")}
_CONSTRUCTED_TYPES = {"SEQUENCE", "SET", "SEQUENCE OF", "SET OF", "CHOICE", "OPEN_TYPE", "ANY"}
_TBCD = "0123456789*#abc"
BUSY_CAUSE = 17            # Q.850 / TS 24.008 cause "user busy"
UNANSWERED_CAUSES = {16, 18, 19, 31}  # normal clearing before answer, no user responding, no answer
OUTCOME_DIAGNOSTIC = {"busy": 17, "unanswered": 19, "failed": 41}
CAUSE_NORMAL_RELEASE = 0
CAUSE_UNSUCCESSFUL_ATTEMPT = 3
CAUSE_ABNORMAL_RELEASE = 4
CAUSE_TIME_LIMIT = 17       # CauseForRecClosing: partial record closed on a time limit


@lru_cache(maxsize=1)
def _cdr() -> Any:
    """pycrate's compiled TS 32.298 modules (importing takes about 2.5 s: do it once, lazily)."""
    from pycrate_asn1dir import CDR

    return CDR


_ASN1_LOCK = threading.RLock()
"""pycrate's compiled types are shared, stateful objects (``from_ber`` then ``get_val`` on the same one):
every use holds this lock, so files decoded on two mediation threads never swap records. The decode is
pure Python (GIL-bound) anyway, so the lock costs no parallelism."""


def _choice(family: str) -> Any:
    cdr = _cdr()
    return cdr.GPRSChargingDataTypes.GPRSRecord if family == "gprs" else cdr.CSChargingDataTypes.CSRecord


@lru_cache(maxsize=8)
def _known_children(family: str, record: str) -> dict[int, tuple[str, bool]]:
    """Context tag number -> (field name, constructed?) of a record type's SET components."""
    out: dict[int, tuple[str, bool]] = {}
    for name, comp in _choice(family)._cont[record]._cont.items():
        if comp._tag is None:
            continue
        out[comp._tag[0]] = (name, comp.TYPE in _CONSTRUCTED_TYPES)
    return out


# ------------------------------------------------------------------------------------ BER framing


class BerError(OffsetError):
    """A TLV cannot be framed; ``offset`` is the absolute byte offset of the problem."""


@dataclass(frozen=True)
class Tlv:
    cls: int            # 0 universal, 1 application, 2 context, 3 private
    constructed: bool
    number: int
    start: int          # offset of the first tag byte
    content: int        # offset of the first content byte
    end: int            # offset just past the TLV (after the end-of-contents octets if indefinite)


def read_tlv(buf: bytes, pos: int, limit: int | None = None) -> Tlv:
    """Frame one BER TLV at ``pos`` (definite or indefinite length) without decoding it."""
    limit = len(buf) if limit is None else limit
    start = pos
    if pos >= limit:
        raise BerError(pos, "expected a tag, found the end of the data")
    first = buf[pos]
    cls, constructed, number = first >> 6, bool(first & 0x20), first & 0x1F
    pos += 1
    if number == 0x1F:
        number = 0
        while True:
            if pos >= limit:
                raise BerError(pos, "tag runs past the end of the data")
            byte = buf[pos]
            pos += 1
            number = (number << 7) | (byte & 0x7F)
            if not byte & 0x80:
                break
            if number > 1 << 28:
                raise BerError(start, "tag number too large")
    if pos >= limit:
        raise BerError(pos, "length runs past the end of the data")
    length_byte = buf[pos]
    pos += 1
    if length_byte == 0x80:
        if not constructed:
            raise BerError(start, "indefinite length on a primitive value")
        inner = pos
        while True:
            if inner + 2 <= limit and buf[inner] == 0 and buf[inner + 1] == 0:
                return Tlv(cls, constructed, number, start, pos, inner + 2)
            inner = read_tlv(buf, inner, limit).end
    if length_byte & 0x80:
        n = length_byte & 0x7F
        if n > 4 or pos + n > limit:
            raise BerError(start, f"bad long-form length ({n} length octets)")
        length = int.from_bytes(buf[pos:pos + n], "big")
        pos += n
    else:
        length = length_byte
    if pos + length > limit:
        raise BerError(start, f"value of {length} bytes runs past the end of the data ({limit - pos} left)")
    return Tlv(cls, constructed, number, start, pos, pos + length)


def children(buf: bytes, tlv: Tlv) -> list[Tlv]:
    """The child TLVs of a constructed TLV."""
    out: list[Tlv] = []
    pos = tlv.content
    end = tlv.end - 2 if _indefinite(buf, tlv) else tlv.end
    while pos < end:
        child = read_tlv(buf, pos, end)
        out.append(child)
        pos = child.end
    return out


def _indefinite(buf: bytes, tlv: Tlv) -> bool:
    header = buf[tlv.start:tlv.content]
    return header[-1] == 0x80


def encode_tlv(cls: int, constructed: bool, number: int, content: bytes) -> bytes:
    """One BER TLV with a definite length."""
    first = (cls << 6) | (0x20 if constructed else 0)
    if number < 31:
        tag = bytes([first | number])
    else:
        groups = []
        n = number
        while True:
            groups.append(n & 0x7F)
            n >>= 7
            if not n:
                break
        tag = bytes([first | 0x1F]) + bytes([g | 0x80 for g in reversed(groups[1:])] + [groups[0]])
    length = len(content)
    if length < 0x80:
        head = bytes([length])
    else:
        raw = length.to_bytes((length.bit_length() + 7) // 8, "big")
        head = bytes([0x80 | len(raw)]) + raw
    return tag + head + content


# ------------------------------------------------------------------------------ field encodings


def tbcd_decode(raw: bytes) -> str:
    """TBCD digits (low nibble first, 0xF filler) -> text."""
    digits = []
    for byte in raw:
        for nibble in (byte & 0x0F, byte >> 4):
            if nibble == 0x0F:
                continue
            digits.append(_TBCD[nibble])
    return "".join(digits)


def tbcd_encode(digits: str) -> bytes:
    if not digits or any(ch not in _TBCD for ch in digits):
        raise ValueError(f"not TBCD digits: {digits!r}")
    values = [_TBCD.index(ch) for ch in digits]
    if len(values) % 2:
        values.append(0x0F)
    return bytes(values[i] | (values[i + 1] << 4) for i in range(0, len(values), 2))


def address_decode(raw: bytes) -> str:
    """ISDN-AddressString / BCD directory number: TON/NPI octet, then TBCD digits."""
    return tbcd_decode(raw[1:]) if raw else ""


def address_encode(digits: str) -> bytes:
    """International E.164 number (TON international, NPI ISDN: 0x91) as an AddressString."""
    return b"\x91" + tbcd_encode(digits)


def _bcd2(byte: int) -> int:
    hi, lo = byte >> 4, byte & 0x0F
    if hi > 9 or lo > 9:
        raise ValueError(f"0x{byte:02x} is not two BCD digits")
    return hi * 10 + lo


def timestamp_decode(raw: bytes) -> datetime:
    """TS 32.298 TimeStamp (YYMMDDhhmmss, sign, hhmm offset; local time) -> UTC instant."""
    if len(raw) != 9:
        raise ValueError(f"TimeStamp has {len(raw)} octets, not 9")
    yy, mo, dd, hh, mi, ss = (_bcd2(b) for b in raw[:6])
    sign = raw[6]
    if sign not in (0x2B, 0x2D):
        raise ValueError(f"TimeStamp sign octet is 0x{sign:02x}, not '+' or '-'")
    offset = timedelta(hours=_bcd2(raw[7]), minutes=_bcd2(raw[8]))
    local = datetime(2000 + yy, mo, dd, hh, mi, ss)
    utc = local - offset if sign == 0x2B else local + offset
    return utc.replace(tzinfo=UTC)


def timestamp_encode(instant: datetime, tz: str) -> bytes:
    """UTC instant -> TimeStamp in ``tz`` local time with its UTC offset (whole seconds)."""
    local = instant.astimezone(ZoneInfo(tz))
    offset = local.utcoffset() or timedelta(0)
    sign = 0x2B if offset >= timedelta(0) else 0x2D
    minutes = abs(int(offset.total_seconds())) // 60

    def bcd(n: int) -> int:
        return ((n // 10) << 4) | (n % 10)

    return bytes([bcd(local.year % 100), bcd(local.month), bcd(local.day), bcd(local.hour),
                  bcd(local.minute), bcd(local.second), sign, bcd(minutes // 60), bcd(minutes % 60)])


def plmn_decode(raw: bytes) -> str:
    """PLMN-Id (3 octets, MCC/MNC nibbles as in TS 29.060 RAI) -> MCC+MNC digits."""
    if len(raw) != 3:
        raise ValueError(f"PLMN-Id has {len(raw)} octets, not 3")
    mcc = f"{raw[0] & 0x0F}{raw[0] >> 4}{raw[1] & 0x0F}"
    mnc3 = raw[1] >> 4
    mnc = f"{raw[2] & 0x0F}{raw[2] >> 4}" + ("" if mnc3 == 0x0F else str(mnc3))
    return mcc + mnc


def plmn_encode(mccmnc: str) -> bytes:
    mcc, mnc = mccmnc[:3], mccmnc[3:]
    d = [int(c) for c in mcc]
    m = [int(c) for c in mnc]
    mnc3 = m[2] if len(m) == 3 else 0x0F
    return bytes([d[0] | d[1] << 4, d[2] | mnc3 << 4, m[0] | m[1] << 4])


def visited_tadig(mccmnc: str) -> str | None:
    """Serving PLMN -> visited TADIG; the home network is not roaming (null)."""
    tadig = PLMN_TADIG.get(mccmnc, mccmnc)
    return None if tadig == HOME_TADIG else tadig


def _oid_bytes(dotted: str) -> bytes:
    parts = [int(p) for p in dotted.split(".")]
    out = bytearray()
    for value in [parts[0] * 40 + parts[1], *parts[2:]]:
        groups = [value & 0x7F]
        value >>= 7
        while value:
            groups.append((value & 0x7F) | 0x80)
            value >>= 7
        out += bytes(reversed(groups))
    return bytes(out)


_TELBILL_OID_TLV = encode_tlv(0, False, 6, _oid_bytes(TELBILL_OID))


def telbill_extension(values: dict[str, str | None]) -> bytes:
    """One ManagementExtension {identifier TELBILL_OID, information [2] UTF8String(JSON)}."""
    text = json.dumps(values, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    return encode_tlv(0, True, 16, _TELBILL_OID_TLV + encode_tlv(2, True, 2, encode_tlv(0, False, 12, text)))


def read_telbill_extension(buf: bytes, extensions: Tlv) -> dict[str, str | None]:
    """Values of the telbill ManagementExtension inside a recordExtensions SET OF (others ignored)."""
    for ext in children(buf, extensions):
        parts = children(buf, ext)
        if not parts or buf[parts[0].start:parts[0].end] != _TELBILL_OID_TLV:
            continue
        for part in parts[1:]:
            if part.cls == 2 and part.number == 2:
                inner = children(buf, part)[0]
                value = json.loads(buf[inner.content:inner.end].decode("utf-8"))
                return {str(k): None if v is None else str(v) for k, v in value.items()}
    return {}


# ---------------------------------------------------------------------------------- decoding


class RecordError(ValueError):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class CleanRecord:
    family: str
    record: str
    ber: bytes                  # the record re-encoded with only schema-known children
    extension: dict[str, str | None]   # telbill extension values ({} when absent)
    skipped_tags: tuple[int, ...]


def clean_record(buf: bytes, tlv: Tlv) -> CleanRecord:
    """Drop unknown / clashing children (vendor tags) and lift out the telbill extension."""
    if tlv.cls != 2 or not tlv.constructed or tlv.number not in RECORD_TAGS:
        kind = f"[{tlv.number}]" if tlv.cls == 2 else f"class {tlv.cls} tag {tlv.number}"
        raise RecordError("UNSUPPORTED_RECORD_TYPE",
                          f"record tag {kind} is not pGWRecord [79], sGWRecord [78], moCallRecord [0] or mtCallRecord [1]")
    family, record = RECORD_TAGS[tlv.number]
    known = _known_children(family, record)
    kept: list[bytes] = []
    skipped: list[int] = []
    extension: dict[str, str | None] = {}
    for child in children(buf, tlv):
        spec = known.get(child.number) if child.cls == 2 else None
        if spec is None or spec[1] != child.constructed:
            skipped.append(child.number)
            continue
        if spec[0] == "recordExtensions":
            extension = read_telbill_extension(buf, child)
            continue
        kept.append(buf[child.start:child.end])
    return CleanRecord(family, record, encode_tlv(2, True, tlv.number, b"".join(kept)), extension, tuple(skipped))


def _decode_asn1(clean: CleanRecord) -> dict[str, Any]:
    asn = _choice(clean.family)
    with _ASN1_LOCK:
        try:
            asn.from_ber(clean.ber)
        except Exception as exc:  # noqa: BLE001 - pycrate raises many types; each becomes a reject reason
            raise RecordError("BER_DECODE_ERROR", f"{clean.record} does not decode: {type(exc).__name__}: {exc}") from exc
        name, value = asn.get_val()
    if name != clean.record:
        raise RecordError("BER_DECODE_ERROR", f"decoded as {name}, framed as {clean.record}")
    return value


def _time(value: dict[str, Any], field: str) -> datetime | None:
    raw = value.get(field)
    if raw is None:
        return None
    try:
        return timestamp_decode(raw)
    except ValueError as exc:
        raise RecordError("BAD_TIMESTAMP", f"{field} {raw.hex()}: {exc}") from exc


def _gprs_rows(value: dict[str, Any], ext: dict[str, str | None]) -> list[dict[str, Any]]:
    start = _time(value, "recordOpeningTime")
    if start is None:
        raise RecordError("BAD_TIMESTAMP", "recordOpeningTime is missing")
    imsi = tbcd_decode(value["servedIMSI"]) if value.get("servedIMSI") else None
    msisdn = address_decode(value["servedMSISDN"]) if value.get("servedMSISDN") else None
    charging = value.get("chargingID")
    plmn = value.get("servingNodePLMNIdentifier")
    try:
        visited = visited_tadig(plmn_decode(plmn)) if plmn is not None else None
    except ValueError as exc:
        raise RecordError("BER_DECODE_ERROR", f"servingNodePLMNIdentifier {plmn.hex()}: {exc}") from exc
    qos = (value.get("ePCQoSInformation") or {}).get("qCI")
    node = value.get("nodeID")
    local_seq = value.get("localSequenceNumber")
    seq = value.get("recordSequenceNumber")
    base_id = (f"{node}:{local_seq}" if node is not None and local_seq is not None
               else f"{charging}:{seq if seq is not None else 0}")
    base = {
        "service": "data",
        "direction": "MO",
        "msisdn": msisdn,
        "imsi": imsi,
        "start_time": start,
        "duration_s": 0,
        "call_outcome": "answered",
        "snssai": ext.get("snssai"),
        "qos_class": qos,
        "apn": value.get("accessPointNameNI"),
        "visited_network": ext.get("visited_network", visited),
        "charging_id": ext.get("charging_id", None if charging is None else str(charging)),
        "partial_seq": seq,
    }
    containers = value.get("listOfServiceData") or []
    if not containers:
        volumes = value.get("listOfTrafficVolumes") or []
        up = sum(v.get("dataVolumeGPRSUplink") or 0 for v in volumes)
        down = sum(v.get("dataVolumeGPRSDownlink") or 0 for v in volumes)
        return [{**base, "network_record_id": ext.get("network_record_id", base_id), "rating_group": None,
                 "uplink_bytes": up, "downlink_bytes": down, "quantity": up + down}]
    rows = []
    for container in containers:
        up = container.get("datavolumeFBCUplink") or 0
        down = container.get("datavolumeFBCDownlink") or 0
        group = container.get("ratingGroup")
        rid = ext.get("network_record_id", base_id)
        if len(containers) > 1:
            rid = f"{rid}:rg{group}"
        rows.append({**base, "network_record_id": rid, "rating_group": group, "uplink_bytes": up,
                     "downlink_bytes": down, "quantity": up + down})
    return rows


def _cs_rows(record: str, value: dict[str, Any], ext: dict[str, str | None]) -> list[dict[str, Any]]:
    answer = _time(value, "answerTime")
    seizure = _time(value, "seizureTime")
    start = answer or seizure
    if start is None:
        raise RecordError("BAD_TIMESTAMP", "neither answerTime nor seizureTime is present")
    mo = record == "moCallRecord"
    other_raw = value.get("calledNumber") if mo else value.get("callingNumber")
    diagnostics = value.get("diagnostics")
    cause = diagnostics[1] if isinstance(diagnostics, tuple) and diagnostics[0] == "gsm0408Cause" else None
    if answer is not None:
        outcome = "answered"
    elif cause == BUSY_CAUSE:
        outcome = "busy"
    elif cause in UNANSWERED_CAUSES or (cause is None and value.get("causeForTerm") == CAUSE_NORMAL_RELEASE):
        outcome = "unanswered"
    else:
        outcome = "failed"
    entity = address_decode(value.get("recordingEntity") or b"")
    reference = (value.get("callReference") or b"").hex()
    seq = value.get("sequenceNumber")
    base_id = f"{entity}:{reference}" + (f":{seq}" if seq is not None else "")
    duration = value.get("callDuration")
    return [{
        "network_record_id": ext.get("network_record_id", base_id),
        "service": "voice",
        "direction": "MO" if mo else "MT",
        "msisdn": address_decode(value["servedMSISDN"]) if value.get("servedMSISDN") else None,
        "imsi": tbcd_decode(value["servedIMSI"]) if value.get("servedIMSI") else None,
        "other_party": address_decode(other_raw) if other_raw else None,
        "start_time": start,
        "duration_s": duration,
        "quantity": duration,
        "call_outcome": outcome,
        "visited_network": ext.get("visited_network"),
        "charging_id": ext.get("charging_id", str(int(reference, 16)) if reference else None),
        "partial_seq": seq,
    }]


_MALFORMED = (KeyError, TypeError, ValueError, IndexError, UnicodeDecodeError, AttributeError)
"""What a damaged record can raise while we read our extension or map decoded values."""


def decode_record(buf: bytes, tlv: Tlv) -> tuple[list[dict[str, Any]], tuple[int, ...]]:
    """One framed record -> raw-usage rows (and the vendor tags that were skipped)."""
    try:
        clean = clean_record(buf, tlv)
    except (RecordError, BerError):
        raise
    except _MALFORMED as exc:
        raise RecordError("BER_DECODE_ERROR", f"recordExtensions: {type(exc).__name__}: {exc}") from exc
    value = _decode_asn1(clean)
    try:
        if clean.family == "gprs":
            return _gprs_rows(value, clean.extension), clean.skipped_tags
        return _cs_rows(clean.record, value, clean.extension), clean.skipped_tags
    except RecordError:
        raise
    except _MALFORMED as exc:
        raise RecordError("BER_DECODE_ERROR", f"{clean.record}: {type(exc).__name__}: {exc}") from exc


_ROW_SCHEMA: dict[str, pl.DataType] = {
    "record_offset": pl.Int64, "network_record_id": pl.String, "service": pl.String, "direction": pl.String,
    "msisdn": pl.String, "imsi": pl.String, "other_party": pl.String, "start_time": pl.Datetime("us", "UTC"),
    "duration_s": pl.Int64, "quantity": pl.Int64, "uplink_bytes": pl.Int64, "downlink_bytes": pl.Int64,
    "call_outcome": pl.String, "rating_group": pl.Int32, "snssai": pl.String, "qos_class": pl.Int32,
    "apn": pl.String, "visited_network": pl.String, "charging_id": pl.String, "partial_seq": pl.Int32,
}
MAX_REJECT_HEX_BYTES = 65_536
"""Reject ``raw`` keeps at most this many bytes (as hex) of an unframeable file tail; the message
gives the full byte range so the rest can still be cut out of the landed file."""


def _decode_at(data: bytes, tlv: Tlv, offset: int, rows: list[dict[str, Any]],
               rejects: list[tuple[int, str, str, str]], raw_from: int) -> None:
    """Decode one framed record into ``rows`` (all at ``offset``), or one reject whose hex starts at ``raw_from``."""
    try:
        decoded, _skipped = decode_record(data, tlv)
        rows.extend({"record_offset": offset, **row} for row in decoded)
    except (RecordError, BerError) as exc:
        code = exc.code if isinstance(exc, RecordError) else "BER_DECODE_ERROR"
        rejects.append((offset, code, f"record at byte offset {offset}: {exc}", data[raw_from:tlv.end].hex()))


def _read_plain(data: bytes, file_key: str, rows: list[dict[str, Any]],
                rejects: list[tuple[int, str, str, str]]) -> None:
    """Concatenated records with optional 0x00/0xFF filler between them."""
    pos = 0
    while pos < len(data):
        if data[pos] in (0x00, 0xFF):  # block filler between records
            pos += 1
            continue
        try:
            tlv = read_tlv(data, pos)
        except BerError as exc:
            tail = data[pos:]
            rejects.append((pos, "BER_DECODE_ERROR",
                            f"{exc}; bytes {pos}..{len(data)} of {file_key} cannot be framed as records",
                            tail[:MAX_REJECT_HEX_BYTES].hex()))
            break
        _decode_at(data, tlv, pos, rows, rejects, pos)
        pos = tlv.end


def _framed_record(data: bytes, cdr: ts32297.CdrHeader, rows: list[dict[str, Any]],
                   rejects: list[tuple[int, str, str, str]]) -> None:
    """One complete CDR of a framed file: its header's format checked, its record decoded (offset = CDR header)."""
    at = cdr.offset  # a reject's raw text is the CDR's hex, built only for rejects
    if cdr.record_format != ts32297.FORMAT_BER:
        name = ts32297.RECORD_FORMATS.get(cdr.record_format, f"unknown format {cdr.record_format}")
        rejects.append((at, "UNSUPPORTED_CDR_FORMAT",
                        f"CDR at byte offset {at}: its CDR header says data record format {cdr.record_format} "
                        f"({name}), only 1 (BER) is read", data[at:cdr.end].hex()))
        return
    try:
        tlv = read_tlv(data, cdr.record_start, cdr.end)
    except BerError as exc:
        rejects.append((at, "BER_DECODE_ERROR", f"CDR at byte offset {at}: {exc}", data[at:cdr.end].hex()))
        return
    if tlv.end != cdr.end and data[tlv.end:cdr.end].strip(b"\x00\xff"):
        rejects.append((at, "BER_DECODE_ERROR",
                        f"CDR at byte offset {at}: its CDR header says {cdr.length} octets, the BER record "
                        f"takes {tlv.end - cdr.record_start} and the rest is not filler", data[at:cdr.end].hex()))
        return
    _decode_at(data, tlv, at, rows, rejects, at)


def _read_framed(data: bytes, file_key: str, header: ts32297.FileHeader, rows: list[dict[str, Any]],
                 rejects: list[tuple[int, str, str, str]]) -> None:
    """A TS 32.297 file: CDRs walked by their CDR header lengths, then every header fact checked.

    A file that ends inside a CDR (or its header) is cut: that CDR and anything after it is one
    ``BER_DECODE_ERROR`` reject (records before it are kept), which also explains a count or file
    length short of what the header says. Otherwise a number of CDRs other than the header's is one
    ``CDR_COUNT_MISMATCH`` reject, a file length the CDRs (plus trailing 0x00/0xFF padding) do not
    explain one ``FILE_LENGTH_MISMATCH`` reject, and a lost CDR indicator other than 0 one
    ``LOST_CDRS`` reject at offset 0 (so it reaches ``mediation/rejects`` and the manifest's rejected
    count without a new per-file field). A CDR length of 0 that is not trailing padding loses the
    framing like a cut. Each finding is one reject row, so ``records_in = rows + rejects`` holds.
    """
    pos, found, cut = header.header_length, 0, False
    end = len(data)
    while pos < end:
        cdr = ts32297.parse_cdr_header(data, pos)
        if (cdr is None or cdr.length in (0, 0xFFFF) or cdr.end > end) and ts32297.is_filler(data, pos):
            break                                       # trailing 0x00/0xFF block padding
        if cdr is None or cdr.end > end or cdr.length == 0:
            cut = True
            why = ("the file ends inside its CDR header" if cdr is None
                   else "a CDR length of 0" if cdr.length == 0
                   else f"its CDR length {cdr.length} runs past the end of the file ({end - cdr.record_start} octets left)")
            rejects.append((pos, "BER_DECODE_ERROR",
                            f"CDR at byte offset {pos}: {why}; bytes {pos}..{end} of {file_key} cannot be framed "
                            f"as CDRs (the file header says {header.cdr_count} CDRs and {header.file_length} octets; "
                            f"{found} complete CDRs precede the cut)",
                            data[pos:pos + MAX_REJECT_HEX_BYTES].hex()))
            found += 1
            break
        _framed_record(data, cdr, rows, rejects)
        found += 1
        pos = cdr.end
    content_end = pos
    missing = header.cdr_count > found
    if not cut and header.cdr_count != found:
        rejects.append((end if missing else 0, "CDR_COUNT_MISMATCH",
                        f"the file header says {header.cdr_count} CDRs, the file holds {found}"
                        + (f": {header.cdr_count - found} missing, the file ends at a CDR boundary (truncated?); "
                           f"{end} of the {header.file_length} octets the header declares were received"
                           if missing else ": all of them were read"), ""))
    short_explained = missing and header.file_length > end     # the count reject above already says so
    if not cut and not short_explained and not content_end <= header.file_length <= end:
        where = end if header.file_length > end else header.file_length
        rejects.append((where, "FILE_LENGTH_MISMATCH",
                        f"the file header says the file is {header.file_length} octets; {end} were received and "
                        f"the CDRs end at byte {content_end}", ""))
    lost = ts32297.lost_cdrs_text(header.lost_cdr_indicator)
    if lost:
        rejects.append((0, "LOST_CDRS",
                        f"file header lost CDR indicator 0x{header.lost_cdr_indicator:02x}: {lost} before file "
                        f"sequence {header.sequence} of {header.node_address}", ""))


def read_ber(source: str, file_key: str, data: bytes) -> ParsedFile:
    """Decode TS 32.298 records, plain or TS 32.297-framed; every record ends as rows or as a reject."""
    rows: list[dict[str, Any]] = []
    rejects: list[tuple[int, str, str, str]] = []
    if ts32297.looks_framed(data):
        try:
            header = ts32297.parse_file_header(data)
        except ts32297.FramingError as exc:
            raise UnreadableFile("BAD_FILE_HEADER", f"{file_key}: TS 32.297 file header: {exc}") from exc
        _read_framed(data, file_key, header, rows, rejects)
    else:
        _read_plain(data, file_key, rows, rejects)
    if not rows and not rejects:
        raise UnreadableFile("EMPTY_FILE", f"{file_key}: no records (empty, or only 0x00/0xFF filler)")
    rejects.sort(key=lambda r: r[0])
    frame = pl.DataFrame(rows, schema=_ROW_SCHEMA).with_columns(
        pl.lit(source).alias("source"), pl.lit(file_key).alias("source_file"))
    return ParsedFile(records=conform_records(frame), rejects=reject_rows(source, file_key, rejects))


@register("ber_3gpp")
def read(source: str, file_key: str, data: bytes) -> ParsedFile:
    return read_ber(source, file_key, data)


# ---------------------------------------------------------------------------------- encoding


def _u32(value: str | None, fallback: str) -> tuple[int, bool]:
    """A value as an unsigned 32-bit integer, or a stable hash of it (``exact`` False)."""
    if value is not None and value.isdigit() and int(value) < 1 << 32:
        return int(value), True
    return int(hashlib.sha256((value or fallback).encode()).hexdigest()[:8], 16), False


def split_records(blob: bytes) -> list[bytes]:
    """Concatenated BER records (what the encoders return) -> one bytes per record, for :func:`frame_32297`."""
    out: list[bytes] = []
    pos = 0
    while pos < len(blob):
        end = read_tlv(blob, pos).end
        out.append(blob[pos:end])
        pos = end
    return out


def _with_extension(record_ber: bytes, ext_tag: int, values: dict[str, str | None]) -> bytes:
    """Append a recordExtensions child holding the telbill extension to an encoded record."""
    outer = read_tlv(record_ber, 0)
    extension = encode_tlv(2, True, ext_tag, telbill_extension(values))
    return encode_tlv(2, True, outer.number, record_ber[outer.content:outer.end] + extension)


def _require(records: pl.DataFrame, service: str, fn: str) -> None:
    if records.height and (records["service"] != service).any():
        raise ValueError(f"{fn}: expects {service} rows only")


def encode_pgw_records(records: pl.DataFrame, *, tz: str = "Europe/Berlin", node_id: str = "PGW01") -> bytes:
    """Raw-usage data rows -> concatenated pGWRecord [79] BER, one record per row.

    Each row becomes one record with one service data container (its rating group, when set) and one
    traffic volume container; times are written in ``tz`` with their UTC offset. ``charging_id``
    must be a uint32 to be exact (else a stable hash, the text travels in the telbill extension);
    ``network_record_id``, ``snssai`` travel in the telbill extension.
    """
    _require(records, "data", "encode_pgw_records")
    asn = _choice("gprs")
    out = bytearray()
    for index, row in enumerate(records.iter_rows(named=True), start=1):
        charging, exact = _u32(row["charging_id"], f"{row['network_record_id']}")
        opened = timestamp_encode(row["start_time"], tz)
        up, down = row["uplink_bytes"] or 0, row["downlink_bytes"] or 0
        visited = row["visited_network"]
        value: dict[str, Any] = {
            "recordType": 85,
            "p-GWAddress": ("iPBinaryAddress", ("iPBinV4Address", b"\xc0\x00\x02\x01")),
            "chargingID": charging,
            "servingNodeAddress": [("iPBinaryAddress", ("iPBinV4Address", b"\xc0\x00\x02\x02"))],
            "accessPointNameNI": row["apn"] or "internet",
            "recordOpeningTime": opened,
            "duration": max(row["duration_s"] or 0, 0),
            "causeForRecClosing": CAUSE_NORMAL_RELEASE if row["partial_seq"] is None else CAUSE_TIME_LIMIT,
            "nodeID": node_id,
            "localSequenceNumber": index,
            "servingNodePLMNIdentifier": plmn_encode(TADIG_PLMN.get(visited, HOME_PLMN) if visited else HOME_PLMN),
            "servingNodeType": ["gTPSGW"],
            "chargingCharacteristics": b"\x08\x00",
            "listOfTrafficVolumes": [{"dataVolumeGPRSUplink": up, "dataVolumeGPRSDownlink": down,
                                      "changeCondition": "recordClosure", "changeTime": opened}],
        }
        if row["imsi"]:
            value["servedIMSI"] = tbcd_encode(row["imsi"])
        if row["msisdn"]:
            value["servedMSISDN"] = address_encode(row["msisdn"])
        if row["partial_seq"] is not None:
            value["recordSequenceNumber"] = row["partial_seq"]
        if row["qos_class"] is not None:
            value["ePCQoSInformation"] = {"qCI": row["qos_class"]}
        if row["rating_group"] is not None:
            value["listOfServiceData"] = [{"ratingGroup": row["rating_group"], "datavolumeFBCUplink": up,
                                           "datavolumeFBCDownlink": down, "timeOfReport": opened,
                                           "serviceConditionChange": (0x40, 32)}]
        ext: dict[str, str | None] = {}
        if row["network_record_id"] is not None:
            ext["network_record_id"] = row["network_record_id"]
        if row["snssai"] is not None:
            ext["snssai"] = row["snssai"]
        if visited is not None and visited not in TADIG_PLMN:
            ext["visited_network"] = visited
        if not exact:  # the text (or null) travels beside the hashed chargingID
            ext["charging_id"] = row["charging_id"]
        with _ASN1_LOCK:
            asn.set_val(("pGWRecord", value))
            ber = asn.to_ber()
        out += _with_extension(ber, 19, ext) if ext else ber
    return bytes(out)


def encode_msc_records(records: pl.DataFrame, *, tz: str = "Europe/Berlin",
                       msc_address: str = "491720000001") -> bytes:
    """Raw-usage voice rows -> concatenated moCallRecord [0] / mtCallRecord [1] BER, one per row.

    Answered calls get answerTime = start_time; the others get seizureTime only and a TS 24.008
    cause in ``diagnostics`` (busy 17, no answer 19, failure 41). ``charging_id`` (digits) becomes
    the callReference; ``network_record_id``, ``visited_network`` and a non-numeric charging id
    travel in the telbill extension. MT records need an IMSI (mandatory in mtCallRecord).
    """
    _require(records, "voice", "encode_msc_records")
    asn = _choice("cs")
    out = bytearray()
    for row in records.iter_rows(named=True):
        mt = row["direction"] == "MT"
        charging = row["charging_id"]
        exact = charging is not None and charging.isdigit() and int(charging) < 1 << 64
        reference_int = int(charging) if exact else int(
            hashlib.sha256((charging or row["network_record_id"] or "").encode()).hexdigest()[:16], 16)
        start: datetime = row["start_time"]
        seconds = row["duration_s"] if row["duration_s"] is not None else 0
        answered = row["call_outcome"] == "answered"
        value: dict[str, Any] = {
            "recordType": 1 if mt else 0,
            "recordingEntity": address_encode(msc_address),
            "seizureTime": timestamp_encode(start, tz),
            "releaseTime": timestamp_encode(start + timedelta(seconds=max(seconds, 0)), tz),
            "callDuration": seconds,
            "causeForTerm": CAUSE_NORMAL_RELEASE if answered else (
                CAUSE_ABNORMAL_RELEASE if row["call_outcome"] == "failed" else CAUSE_UNSUCCESSFUL_ATTEMPT),
            "callReference": reference_int.to_bytes(8, "big"),
        }
        if answered:
            value["answerTime"] = timestamp_encode(start, tz)
        else:
            value["diagnostics"] = ("gsm0408Cause", OUTCOME_DIAGNOSTIC.get(row["call_outcome"], 41))
        if row["imsi"]:
            value["servedIMSI"] = tbcd_encode(row["imsi"])
        elif mt:
            raise ValueError("encode_msc_records: an mtCallRecord needs servedIMSI; the row has no imsi")
        if row["msisdn"]:
            value["servedMSISDN"] = address_encode(row["msisdn"])
        if row["other_party"]:
            value["callingNumber" if mt else "calledNumber"] = address_encode(row["other_party"])
        if row["partial_seq"] is not None:
            value["sequenceNumber"] = row["partial_seq"]
        ext: dict[str, str | None] = {}
        if row["network_record_id"] is not None:
            ext["network_record_id"] = row["network_record_id"]
        if row["visited_network"] is not None:
            ext["visited_network"] = row["visited_network"]
        if not exact:  # the text (or null) travels beside the hashed callReference
            ext["charging_id"] = charging
        with _ASN1_LOCK:
            asn.set_val(("mtCallRecord" if mt else "moCallRecord", value))
            ber = asn.to_ber()
        out += _with_extension(ber, 32 if mt else 35, ext) if ext else ber
    return bytes(out)
