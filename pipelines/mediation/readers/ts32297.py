"""3GPP TS 32.297 §6.1 CDR file framing: the CDR file header and the per-CDR header (pure codec).

Switches and CGFs (Ericsson, Nokia, Huawei) deliver BER CDR files framed like this::

    file header (header_length octets)
      1-4   file length              5-8   header length
      9     high release id (bits 8-6) / version id (bits 5-1)
      10    low release id / version id
      11-14 file opening timestamp   15-18 timestamp when the last CDR was appended
      19-22 number of CDRs in file   23-26 file sequence number
      27    file closure trigger reason
      28-47 IP address of the node that generated the file (4 x 0xFF, then an IPv6 address;
            IPv4 as ::ffff:a.b.c.d)
      48    lost CDR indicator
      49-50 length of the CDR routeing filter, then the filter
      2     length of the private extension, then the extension (some writers omit both when empty)
      1     high release id extension (only when the high release id is 7: release = 10 + value)
      1     low release id extension  (likewise)
    then per CDR:
      1-2   CDR length (the record after this header)
      3     release id (bits 8-6) / version id (bits 5-1)
      4     data record format (bits 8-6: 1 BER, 2 unaligned PER, 3 aligned PER, 4 XER) / TS number
            (bits 5-1: 6 = TS 32.250 CS, 7 = TS 32.251 PS, ...)
      5     release id extension (only when the release id is 7)
      then the record (CDR length octets)

Timestamps are 32 bits: month(4) day(5) hour(5) minute(6) sign(1, 1 = '+') offset hours(5)
offset minutes(6): local time with its UTC offset, no year and no seconds. The release id is 0 for
R99, 1-6 for Rel-4..Rel-9 and 7 for Rel-10 or later (then release = 10 + the extension octet).

The 32.297 text itself is not in refdata; this layout was cross-checked against three open
implementations that agree with each other (docs/formats.md names them).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from pipelines.mediation.readers import OffsetError

FIXED_HEADER = 50
"""Octets up to and including the routeing filter length: the smallest possible file header."""
MAX_HEADER = FIXED_HEADER + 65_535 + 2 + 65_535 + 2
"""The largest file header the length fields allow (full filter and private extension, both extensions)."""

RECORD_FORMATS = {1: "BER", 2: "unaligned PER", 3: "aligned PER", 4: "XER"}
FORMAT_BER = 1
TS_CS = 6        # TS 32.250: circuit-switched (MSC) CDRs
TS_PS = 7        # TS 32.251: packet-switched (SGW/PGW) CDRs
CLOSURE_REASONS = {
    0: "normal closure", 1: "file size limit reached", 2: "file open-time limit reached",
    3: "maximum number of CDRs in file reached", 4: "file closed by manual intervention",
    5: "CDR release, version or encoding change", 128: "abnormal file closure", 129: "file system error",
    130: "file system storage exhausted", 131: "file integrity error",
}
_FILLER = b"\x00\xff"


class FramingError(OffsetError):
    """A TS 32.297 header that cannot be read; ``offset`` is the file offset of the problem."""


@dataclass(frozen=True)
class HeaderTime:
    """A 32.297 header timestamp: local month/day/hour/minute and the UTC offset in minutes."""

    month: int
    day: int
    hour: int
    minute: int
    utc_offset_minutes: int

    def valid(self) -> bool:
        return (1 <= self.month <= 12 and 1 <= self.day <= 31 and self.hour <= 23 and self.minute <= 59
                and abs(self.utc_offset_minutes) <= 23 * 60 + 59)

    def __str__(self) -> str:
        sign = "+" if self.utc_offset_minutes >= 0 else "-"
        off = abs(self.utc_offset_minutes)
        return f"--{self.month:02d}-{self.day:02d}T{self.hour:02d}:{self.minute:02d}{sign}{off // 60:02d}:{off % 60:02d}"


@dataclass(frozen=True)
class FileHeader:
    file_length: int
    header_length: int
    high_release: int           # 99 for R99, else the release number (4, 5, ..., 10 + extension)
    high_version: int
    low_release: int
    low_version: int
    opened: HeaderTime
    last_append: HeaderTime
    cdr_count: int
    sequence: int
    closure_reason: int
    node_address: str
    lost_cdr_indicator: int     # the raw octet; see :func:`lost_cdrs_text`
    routeing_filter: bytes
    private_extension: bytes


@dataclass(frozen=True)
class CdrHeader:
    offset: int                 # file offset of the CDR header
    size: int                   # 4, or 5 with the release id extension
    length: int                 # octets of the record after the header
    release: int
    version: int
    record_format: int
    ts_number: int

    @property
    def record_start(self) -> int:
        return self.offset + self.size

    @property
    def end(self) -> int:
        return self.offset + self.size + self.length


# ------------------------------------------------------------------------------------- decoding


def _u16(buf: bytes, pos: int) -> int:
    return int.from_bytes(buf[pos:pos + 2], "big")


def _u32(buf: bytes, pos: int) -> int:
    return int.from_bytes(buf[pos:pos + 4], "big")


def decode_time(raw: int) -> HeaderTime:
    offset = ((raw >> 6) & 0x1F) * 60 + (raw & 0x3F)
    return HeaderTime(raw >> 28, (raw >> 23) & 0x1F, (raw >> 18) & 0x1F, (raw >> 12) & 0x3F,
                      offset if (raw >> 11) & 1 else -offset)


def _release(identifier: int) -> int:
    """Release id (3 bits) -> release number; 7 means 'Rel-10 or later, see the extension octet'."""
    return 99 if identifier == 0 else identifier + 3


def _node_address(raw: bytes) -> str:
    address = ipaddress.IPv6Address(raw[4:20])
    return str(address.ipv4_mapped or address)


def looks_framed(head: bytes) -> bool:
    """Whether ``head`` (a file's first bytes) starts with a plausible TS 32.297 file header.

    Structural checks only (a detection must not need the whole file): a context-class BER tag
    first is a plain file; the header length lies between the smallest and the largest header; the
    routeing filter fits in the header; both timestamps are zero (not set) or a real month/day/hour/
    minute with an offset under 24 h. Text, Parquet and plain BER fail these. The file length field is
    not checked here: a CGF that closed a file abnormally may leave it 0 or stale, and the reader reports
    that as ``FILE_LENGTH_MISMATCH`` instead of losing the whole file as an unknown format.
    """
    if len(head) < FIXED_HEADER or 0xA0 <= head[0] <= 0xBF:
        return False
    header_length = _u32(head, 4)
    if not FIXED_HEADER <= header_length <= MAX_HEADER:
        return False
    if FIXED_HEADER + _u16(head, 48) > header_length:
        return False
    return all(t == 0 or decode_time(t).valid() for t in (_u32(head, 10), _u32(head, 14)))


def parse_file_header(data: bytes) -> FileHeader:
    """The file header at the start of ``data``; :class:`FramingError` when its fields do not add up."""
    if len(data) < FIXED_HEADER:
        raise FramingError(len(data), f"the file is cut inside its {FIXED_HEADER}-octet file header")
    header_length = _u32(data, 4)
    if header_length > len(data):
        raise FramingError(len(data), f"the file header is {header_length} octets but the file has only {len(data)}")
    high_id, low_id = data[8] >> 5, data[9] >> 5
    pos = FIXED_HEADER + _u16(data, 48)
    if pos > header_length:
        raise FramingError(48, f"the CDR routeing filter runs past the header length {header_length}")
    routeing_filter = data[FIXED_HEADER:pos]
    n_ext = (high_id == 7) + (low_id == 7)
    remaining = header_length - pos
    private = b""
    if remaining >= 2 + n_ext and remaining == 2 + _u16(data, pos) + n_ext:
        private = data[pos + 2:pos + 2 + _u16(data, pos)]
        pos += 2 + len(private)
    elif remaining != n_ext:   # neither "length + extension + release extensions" nor "release extensions" only
        raise FramingError(pos, f"header length {header_length} does not match its fields "
                                f"({remaining} octets left after the routeing filter)")
    high_release = 10 + data[pos] if high_id == 7 else _release(high_id)
    pos += high_id == 7
    low_release = 10 + data[pos] if low_id == 7 else _release(low_id)
    return FileHeader(
        file_length=_u32(data, 0), header_length=header_length,
        high_release=high_release, high_version=data[8] & 0x1F,
        low_release=low_release, low_version=data[9] & 0x1F,
        opened=decode_time(_u32(data, 10)), last_append=decode_time(_u32(data, 14)),
        cdr_count=_u32(data, 18), sequence=_u32(data, 22), closure_reason=data[26],
        node_address=_node_address(data[27:47]), lost_cdr_indicator=data[47],
        routeing_filter=routeing_filter, private_extension=private,
    )


def parse_cdr_header(data: bytes, pos: int) -> CdrHeader | None:
    """The CDR header at ``pos``, or None when the file ends inside it."""
    if pos + 4 > len(data):
        return None
    release_id = data[pos + 2] >> 5
    size = 5 if release_id == 7 else 4
    if pos + size > len(data):
        return None
    release = 10 + data[pos + 4] if release_id == 7 else _release(release_id)
    return CdrHeader(pos, size, _u16(data, pos), release, data[pos + 2] & 0x1F, data[pos + 3] >> 5,
                     data[pos + 3] & 0x1F)


def is_filler(data: bytes, pos: int) -> bool:
    """Whether everything from ``pos`` on is 0x00/0xFF block padding."""
    return not data[pos:].strip(_FILLER)


def lost_cdrs_text(indicator: int) -> str | None:
    """The lost CDR indicator in words; None when no CDR was lost.

    Bit 8 = 0: the CGF *identified* bits 7-1 lost CDRs and does not know whether more were lost;
    bit 8 = 1: it *calculated* the number as bits 7-1 (0 = lost, number unknown). 127 = 127 or more.
    """
    n = indicator & 0x7F
    if indicator == 0:
        return None
    if indicator & 0x80:
        if n == 0:
            return "CDRs were lost, the CGF cannot tell how many"
        return f"the CGF calculated {'127 or more' if n == 127 else n} lost CDRs"
    return f"the CGF identified {'127 or more' if n == 127 else n} lost CDRs (there may be more)"


# ------------------------------------------------------------------------------------- encoding


def encode_time(instant: datetime, tz: str) -> int:
    """An aware instant as a 32-bit header timestamp in ``tz`` local time with its UTC offset."""
    local = instant.astimezone(ZoneInfo(tz))
    offset = int((local.utcoffset() or timedelta(0)).total_seconds()) // 60
    off = abs(offset)
    return (local.month << 28 | local.day << 23 | local.hour << 18 | local.minute << 12
            | (1 if offset >= 0 else 0) << 11 | (off // 60) << 6 | off % 60)


def _release_octets(release: int, version: int) -> tuple[int, bytes]:
    """Release number -> (release/version octet, extension octets)."""
    if not 0 <= version <= 31:
        raise ValueError(f"version {version} does not fit in 5 bits")
    if release == 99:
        return version, b""
    if 4 <= release <= 9:
        return (release - 3) << 5 | version, b""
    if 10 <= release <= 265:
        return 7 << 5 | version, bytes([release - 10])
    raise ValueError(f"release {release} cannot be encoded (99, 4-9 or 10-265)")


def encode_cdr_header(length: int, *, release: int = 16, version: int = 0, record_format: int = FORMAT_BER,
                      ts_number: int = TS_PS) -> bytes:
    """The CDR header for a record of ``length`` octets."""
    if not 0 <= length <= 0xFFFF:
        raise ValueError(f"a CDR of {length} octets does not fit the 2-octet CDR length")
    octet, ext = _release_octets(release, version)
    return length.to_bytes(2, "big") + bytes([octet, (record_format & 7) << 5 | (ts_number & 0x1F)]) + ext


def _address_octets(address: str) -> bytes:
    ip = ipaddress.ip_address(address)
    v6 = ipaddress.IPv6Address(b"\x00" * 10 + b"\xff\xff" + ip.packed) if ip.version == 4 else ip
    return b"\xff" * 4 + v6.packed


def frame_32297(records: list[bytes], *, sequence: int, opened: datetime, last_append: datetime | None = None,
                tz: str = "Europe/Berlin", closure_reason: int = 0, node_address: str = "192.0.2.10",
                lost_cdr_indicator: int = 0, release: int = 16, version: int = 0, ts_number: int = TS_PS,
                routeing_filter: bytes = b"", private_extension: bytes = b"",
                cdr_count: int | None = None) -> bytes:
    """Encoded BER records -> one TS 32.297 CDR file (file header, then a CDR header per record).

    Deterministic: the timestamps are the given instants (``last_append`` defaults to ``opened``),
    written in ``tz`` local time. ``cdr_count`` overrides the header's number of CDRs (tests of a
    header that does not match its file); by default it is ``len(records)``. The private extension
    length is always written (2 octets, 0 when empty).
    """
    high, high_ext = _release_octets(release, version)
    tail = (len(routeing_filter).to_bytes(2, "big") + routeing_filter
            + len(private_extension).to_bytes(2, "big") + private_extension + high_ext + high_ext)
    header_length = FIXED_HEADER - 2 + len(tail)
    body = b"".join(encode_cdr_header(len(r), release=release, version=version, ts_number=ts_number) + r
                    for r in records)
    fields = (
        (header_length + len(body)).to_bytes(4, "big") + header_length.to_bytes(4, "big")
        + bytes([high, high])
        + encode_time(opened, tz).to_bytes(4, "big") + encode_time(last_append or opened, tz).to_bytes(4, "big")
        + (len(records) if cdr_count is None else cdr_count).to_bytes(4, "big") + sequence.to_bytes(4, "big")
        + bytes([closure_reason]) + _address_octets(node_address) + bytes([lost_cdr_indicator])
    )
    return fields + tail + body
