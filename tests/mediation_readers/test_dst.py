"""Local-time switch CDRs across the repeated autumn hour and the spring gap (Asterisk and FreeSWITCH CSV).

Berlin, night of 2026-10-25: 03:00 CEST (UTC+2) = 01:00 UTC, the clocks go back to 02:00 CET (UTC+1), so
local 02:00:00-02:59:59 happens twice: first pass = local - 2 h, second pass = local - 1 h. The expected
instants below are worked out by hand from those two offsets (not by the code under test).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import polars as pl
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from pipelines.common.partitions import read_published
from pipelines.common.settings import Settings
from pipelines.common.storage import open_store
from pipelines.customers import import_customers
from pipelines.mediation.control import file_control_report
from pipelines.mediation.pipeline import mediate
from pipelines.mediation.readers import ParsedFile, local_timestamp, resolve_local_stamps, time_fold_note
from pipelines.mediation.readers.asterisk import read_asterisk_csv
from pipelines.mediation.readers.freeswitch import read_freeswitch_csv

BERLIN = "Europe/Berlin"
FMT = "%Y-%m-%d %H:%M:%S"
Line = tuple[str, str, str, int, int]   # start, answer ("" = unanswered), end, duration, billsec


def asterisk_line(i: int, line: Line, msisdn: str = "4915112345678") -> str:
    start, answer, end, duration, billsec = line
    answered = f'"{answer}"' if answer else ""
    disposition = "ANSWERED" if answer else "NO ANSWER"
    return (f'"","{msisdn}","4930123456","from-internal","x","SIP/a-1","SIP/b-2","Dial","SIP/b",'
            f'"{start}",{answered},"{end}",{duration},{billsec},"{disposition}","BILLING","call-{i}",""')


def freeswitch_line(i: int, line: Line) -> str:
    start, answer, end, duration, billsec = line
    cause = "NORMAL_CLEARING" if answer else "NO_ANSWER"
    return (f'"Anna","4915112345678","4930123456","default","{start}","{answer}","{end}",'
            f'"{duration}","{billsec}","{cause}","call-{i}","","acct","PCMA","PCMA"')


FORMATS: dict[str, tuple[Callable[[int, Line], str], Callable[..., ParsedFile]]] = {
    "asterisk": (asterisk_line, read_asterisk_csv),
    "freeswitch": (freeswitch_line, read_freeswitch_csv),
}


def read_lines(fmt: str, lines: list[Line], zone: str = BERLIN) -> ParsedFile:
    render, reader = FORMATS[fmt]
    body = "".join(render(i, line) + "\n" for i, line in enumerate(lines, start=1))
    return reader("msc-west", "msc-west_000001_20261025.csv", body.encode(), switch_tz=zone)


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


def facts(ambiguous: int, record: int, file_order: int, earliest: int) -> dict[str, int]:
    return {"dst_ambiguous_records": ambiguous, "dst_resolved_by_record": record,
            "dst_resolved_by_file_order": file_order, "dst_unresolved_earliest": earliest}


# One switch file of the fold night, in the order the switch wrote it (by call end).
B1 = ("2026-10-25 02:10:00", "2026-10-25 02:10:05", "2026-10-25 02:15:05", 305, 300)  # first pass only
B2 = ("2026-10-25 02:40:00", "2026-10-25 02:40:00", "2026-10-25 02:55:00", 900, 900)  # first pass only
D = ("2026-10-25 02:50:00", "2026-10-25 02:50:20", "2026-10-25 02:05:00", 900, 880)   # first -> second pass
C1 = ("2026-10-25 02:06:00", "2026-10-25 02:06:10", "2026-10-25 02:20:10", 850, 840)  # second pass (after the drop)
C2 = ("2026-10-25 02:30:00", "", "2026-10-25 02:30:25", 25, 0)                        # second pass, unanswered
A1 = ("2026-10-25 01:58:00", "2026-10-25 02:00:30", "2026-10-25 03:05:00", 7620, 7470)  # before -> after
A2 = ("2026-10-25 02:40:00", "2026-10-25 02:40:00", "2026-10-25 03:10:00", 1800, 1800)  # second pass -> after
PLAIN = ("2026-10-25 01:50:00", "2026-10-25 01:50:00", "2026-10-25 03:15:00", 8700, 8700)  # no ambiguous stamp
NIGHT = [B1, B2, D, C1, C2, A1, A2, PLAIN]
NIGHT_TRUTH = [
    utc(2026, 10, 25, 0, 10, 5),    # B1 answer 02:10:05 CEST
    utc(2026, 10, 25, 0, 40),       # B2 02:40 CEST
    utc(2026, 10, 25, 0, 50, 20),   # D answer 02:50:20 CEST; its end 02:05 CET = 01:05 UTC, 15 min after the start
    utc(2026, 10, 25, 1, 6, 10),    # C1 answer 02:06:10 CET
    utc(2026, 10, 25, 1, 30),       # C2 start 02:30 CET (unanswered: start_time is the start)
    utc(2026, 10, 25, 0, 0, 30),    # A1 answer 02:00:30 CEST (start 01:58 CEST = 23:58 UTC, end 03:05 CET = 02:05 UTC)
    utc(2026, 10, 25, 1, 40),       # A2 02:40 CET (ends 03:10 CET = 02:10 UTC, 30 min later)
    utc(2026, 10, 24, 23, 50),      # PLAIN 01:50 CEST
]


@pytest.mark.parametrize("fmt", FORMATS)
def test_fold_night_every_call_at_its_true_instant(fmt: str) -> None:
    parsed = read_lines(fmt, NIGHT)
    assert parsed.rejects.height == 0
    assert parsed.records["record_offset"].to_list() == list(range(1, 9))
    assert parsed.records["start_time"].to_list() == NIGHT_TRUTH
    # D, A1, A2 pinned by their own stamps; B1, B2 (before the drop) and C1, C2 (after it) by file order
    assert parsed.facts == facts(7, 3, 4, 0)
    assert time_fold_note(parsed.facts) == ("repeated DST hour: 7 records, 3 placed by their own stamps, "
                                            "4 by file order, 0 kept at the first-pass reading (may be 1 h early)")
    assert time_fold_note(read_lines(fmt, [PLAIN]).facts) is None


@pytest.mark.parametrize("fmt", FORMATS)
def test_each_case_alone(fmt: str) -> None:
    """(a) spanning the whole hour and (d) first -> second pass need no neighbours; (b)/(c) alone cannot tell."""
    assert read_lines(fmt, [A1]).records["start_time"].to_list() == [utc(2026, 10, 25, 0, 0, 30)]
    assert read_lines(fmt, [A2]).records["start_time"].to_list() == [utc(2026, 10, 25, 1, 40)]
    assert read_lines(fmt, [D]).records["start_time"].to_list() == [utc(2026, 10, 25, 0, 50, 20)]
    assert read_lines(fmt, [PLAIN]).records["start_time"].to_list() == [utc(2026, 10, 24, 23, 50)]
    assert read_lines(fmt, [PLAIN]).facts == facts(0, 0, 0, 0)
    alone = read_lines(fmt, [B1])
    assert alone.records["start_time"].to_list() == [utc(2026, 10, 25, 0, 10, 5)]
    assert alone.facts == facts(1, 0, 0, 1)


@pytest.mark.parametrize("fmt", FORMATS)
def test_no_drop_between_first_and_second_pass_is_not_evidence(fmt: str) -> None:
    """B1 ends 02:15:05 CEST, C1 ends 02:20:10 CET: local end times rise, as if both were first pass."""
    parsed = read_lines(fmt, [B1, C1])
    assert parsed.records["start_time"].to_list() == [utc(2026, 10, 25, 0, 10, 5), utc(2026, 10, 25, 0, 6, 10)]
    assert parsed.facts == facts(2, 0, 0, 2)


@pytest.mark.parametrize("fmt", FORMATS)
def test_file_starting_inside_the_second_pass_keeps_the_earlier_reading_and_says_so(fmt: str) -> None:
    """No drop seen and nothing pinned: the documented limit. Both are one hour early, and counted."""
    parsed = read_lines(fmt, [C1, C2])
    assert parsed.records["start_time"].to_list() == [utc(2026, 10, 25, 0, 6, 10), utc(2026, 10, 25, 0, 30)]
    assert parsed.facts == facts(2, 0, 0, 2)


@pytest.mark.parametrize("fmt", FORMATS)
def test_second_pass_known_from_a_pinned_record_without_a_drop(fmt: str) -> None:
    """A call pinned to the second pass by its own stamps (D) places the all-ambiguous calls written after it."""
    parsed = read_lines(fmt, [D, C1, C2])
    assert parsed.records["start_time"].to_list() == [utc(2026, 10, 25, 0, 50, 20), utc(2026, 10, 25, 1, 6, 10),
                                                      utc(2026, 10, 25, 1, 30)]
    assert parsed.facts == facts(3, 1, 2, 0)


@pytest.mark.parametrize("fmt", FORMATS)
def test_file_not_in_end_order_does_not_use_file_order(fmt: str) -> None:
    """Ends that go back outside the fold (10:16 then 10:10) show the order is not end order: no drop is trusted."""
    early_day = [("2026-10-03 10:15:00", "2026-10-03 10:15:00", "2026-10-03 10:16:00", 60, 60),
                 ("2026-10-03 10:09:00", "2026-10-03 10:09:00", "2026-10-03 10:10:00", 60, 60)]
    parsed = read_lines(fmt, [*early_day, B1, B2, C1])
    assert parsed.records["start_time"].to_list()[2:] == [utc(2026, 10, 25, 0, 10, 5), utc(2026, 10, 25, 0, 40),
                                                          utc(2026, 10, 25, 0, 6, 10)]  # C1 read 1 h early
    assert parsed.facts == facts(3, 0, 0, 3)


@pytest.mark.parametrize("fmt", FORMATS)
def test_second_pass_does_not_spill_into_next_years_fold(fmt: str) -> None:
    """2027-10-31 is another night: the 2026 drop says nothing about it."""
    next_year = ("2027-10-31 02:10:00", "2027-10-31 02:10:00", "2027-10-31 02:12:00", 120, 120)
    parsed = read_lines(fmt, [B2, C1, next_year])
    assert parsed.records["start_time"].to_list() == [utc(2026, 10, 25, 0, 40), utc(2026, 10, 25, 1, 6, 10),
                                                      utc(2027, 10, 31, 0, 10)]
    assert parsed.facts == facts(3, 0, 2, 1)


@pytest.mark.parametrize("fmt", FORMATS)
def test_stamps_that_contradict_the_durations_keep_the_earlier_reading(fmt: str) -> None:
    """Durations that fit no reading of the stamps (a switch fault): the file order still places the others."""
    bad = ("2026-10-25 02:25:00", "2026-10-25 02:25:00", "2026-10-25 02:28:00", 999, 999)
    parsed = read_lines(fmt, [B2, C1, bad])
    assert parsed.records["start_time"].to_list() == [utc(2026, 10, 25, 0, 40), utc(2026, 10, 25, 1, 6, 10),
                                                      utc(2026, 10, 25, 0, 25)]
    assert parsed.facts == facts(3, 0, 2, 1)


@pytest.mark.parametrize("fmt", FORMATS)
def test_spring_gap_is_still_bad_timestamp(fmt: str) -> None:
    """2026-03-29 02:00-02:59 does not exist in Berlin; a call across the gap is read exactly."""
    gap = ("2026-03-29 02:30:00", "2026-03-29 02:30:00", "2026-03-29 03:31:00", 60, 60)
    across = ("2026-03-29 01:59:30", "2026-03-29 01:59:30", "2026-03-29 03:00:30", 60, 60)
    parsed = read_lines(fmt, [gap, across])
    assert parsed.rejects.select("record_offset", "reason_code").rows() == [(1, "BAD_TIMESTAMP")]
    assert parsed.records["start_time"].to_list() == [utc(2026, 3, 29, 0, 59, 30)]  # 01:59:30 CET
    assert parsed.facts == facts(0, 0, 0, 0)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize(("zone", "offset"), [("UTC", timedelta(0)), ("Asia/Kolkata", timedelta(hours=5, minutes=30))])
def test_zone_without_dst_is_a_plain_reading(fmt: str, zone: str, offset: timedelta) -> None:
    parsed = read_lines(fmt, NIGHT, zone)
    answers = [datetime.strptime(line[1] or line[0], FMT).replace(tzinfo=UTC) - offset for line in NIGHT]
    assert parsed.records["start_time"].to_list() == answers
    assert parsed.facts == facts(0, 0, 0, 0)


def test_mediated_usage_of_a_berlin_switch_has_the_true_instants(tmp_path: Path) -> None:
    """End to end: msc-west (Europe/Berlin in sources.csv) lands the fold-night file; usage and the filtered
    unanswered call carry the true UTC instants."""
    root = Path(__file__).resolve().parents[2]
    settings = Settings(landing_uri=str(tmp_path / "landing"), lake_uri=str(tmp_path / "lake"),
                        warehouse_path=str(tmp_path / "w.duckdb"), tariffs_dir=str(root / "tariffs"),
                        output_dir=str(tmp_path / "out"))
    import_customers(settings, (
        b"account_id,name,currency,timezone,bill_cycle_day,tax_jurisdiction,payment_terms_days,address_line1,city,"
        b"postcode,country,email,phone,parent_account_id,segment,billing_entity\n"
        b"A1,Anna,EUR,Europe/Berlin,1,DE,14,Hauptstr. 1,Berlin,10115,DE,a@example.com,491510000001,,consumer,TBM-DE\n"
    ), (
        b"subscription_id,account_id,msisdn,imsi,plan_id,payment_type,valid_from,valid_to\n"
        b"S1,A1,491510000001,,P_BASIC,postpaid,2026-01-01T00:00:00Z,\n"))
    folder = tmp_path / "landing" / "msc-west"
    folder.mkdir(parents=True)
    body = "".join(asterisk_line(i, line, "491510000001") + "\n" for i, line in enumerate(NIGHT, start=1))
    (folder / "msc-west_000001_20261025.csv").write_text(body)
    assert mediate(settings).balanced
    store = open_store(settings.lake_uri)
    usage = read_published(store, "usage")
    filtered = read_published(store, "mediation/filtered")
    assert usage is not None and filtered is not None
    got = dict(pl.concat([usage.select("network_record_id", "start_time"),
                          filtered.select("network_record_id", "start_time")]).iter_rows())
    assert got == {f"call-{i}": t for i, t in enumerate(NIGHT_TRUTH, start=1)}
    # the per-rule counts reach the file manifest and the mediation report (never silent)
    report = file_control_report(settings, as_of=date(2026, 10, 26))
    (note,) = report.notes.rows()
    assert note[0] == "msc-west/msc-west_000001_20261025.csv" and note[1].startswith("repeated DST hour: ")
    assert note[1] == time_fold_note(facts(7, 3, 4, 0))  # the fold-night file: see the test above
    assert "file notes: 1" in report.text()


# ------------------------------------------------------------------------------------------ property

NIGHTS = {  # zone -> (one hour before its 2026 repeated hour starts, in UTC; how far the clock goes back)
    BERLIN: (utc(2026, 10, 24, 23, 0), timedelta(hours=1)),            # 02:00-02:59 CEST/CET, 25 Oct
    "America/New_York": (utc(2026, 11, 1, 4, 0), timedelta(hours=1)),  # 01:00-01:59 EDT/EST, 1 Nov
    "Australia/Lord_Howe": (utc(2026, 4, 4, 13, 30), timedelta(minutes=30)),  # 01:30-01:59 (+11/+10:30), 5 Apr
}


def local(t: datetime, zone: str = BERLIN) -> str:
    return t.astimezone(ZoneInfo(zone)).strftime(FMT)


calls = st.lists(
    st.tuples(st.integers(0, 4 * 3600),                     # start, seconds after the zone's night start
              st.integers(0, 45),                           # ringing
              st.one_of(st.none(), st.integers(0, 2 * 3600)),  # billsec, None = unanswered
              st.integers(-1, 1)),                          # Asterisk-style rounding of the printed durations
    min_size=1, max_size=14,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(calls=calls, fmt=st.sampled_from(list(FORMATS)), zone=st.sampled_from(list(NIGHTS)))
def test_property_true_instants_recovered_whenever_a_rule_places_them(calls: list, fmt: str, zone: str) -> None:
    """Random true calls around a fold, written in end order as local wall time: every record a rule
    places is at its true instant; the rest are at the first-pass reading (early by the clock change if wrong)."""
    night_start, back = NIGHTS[zone]
    truth, lines = [], []
    for offset, ring, billsec, jitter in calls:
        start = night_start + timedelta(seconds=offset)
        answer = start + timedelta(seconds=ring) if billsec is not None else None
        end = (answer + timedelta(seconds=billsec)) if answer is not None else start + timedelta(seconds=ring)
        duration = int((end - start).total_seconds())
        printed_bill = max(0, (billsec or 0) + jitter) if answer is not None else 0
        lines.append((end, (local(start, zone), local(answer, zone) if answer else "", local(end, zone),
                            max(0, duration + jitter), printed_bill), answer or start))
    lines.sort(key=lambda item: item[0])
    truth = [t for _, _, t in lines]
    file_lines = [line for _, line, _ in lines]

    parsed = read_lines(fmt, file_lines, zone)
    assert parsed.rejects.height == 0
    got = parsed.records["start_time"].to_list()

    frame = pl.DataFrame({"start": [x[0] for x in file_lines], "answer": [x[1] or None for x in file_lines],
                          "end": [x[2] for x in file_lines], "duration": [str(x[3]) for x in file_lines],
                          "billsec": [str(x[4]) for x in file_lines]}, schema=dict.fromkeys(
                              ("start", "answer", "end", "duration", "billsec"), pl.String))
    rules = resolve_local_stamps(frame, FMT, zone, start="start", answer="answer", end="end",
                                 duration="duration", billsec="billsec")["_time_rule"].to_list()
    for when, true, rule in zip(got, truth, rules, strict=True):
        if rule in (None, "record", "file_order"):
            assert when == true, (rule, file_lines)
        else:
            assert when in (true, true - back)
    assert parsed.facts["dst_unresolved_earliest"] == rules.count("earliest")
    assert parsed.facts["dst_ambiguous_records"] == len(rules) - rules.count(None)
    assert sum(when != true for when, true in zip(got, truth, strict=True)) <= rules.count("earliest")


anywhere = st.integers(0, 365 * 86400 - 1).map(lambda s: utc(2026, 1, 1) + timedelta(seconds=s))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=st.lists(st.tuples(anywhere, anywhere, anywhere, st.integers(-5, 9999), st.integers(-5, 9999)),
                     min_size=1, max_size=12),
       fmt=st.sampled_from(list(FORMATS)))
def test_property_files_without_repeated_hour_times_read_as_before(rows: list, fmt: str) -> None:
    """Any order, any (even contradictory) durations: without a repeated-hour stamp, every record is the plain
    wall-clock reading (what the readers did before the DST rules), and the facts are all zero."""
    fold = (utc(2026, 10, 25, 0), utc(2026, 10, 25, 2))
    lines = [(local(a), local(b), local(c), d, e) for a, b, c, d, e in rows
             if not any(fold[0] <= t < fold[1] for t in (a, b, c))]
    assume(lines)
    parsed = read_lines(fmt, lines)
    plain = pl.DataFrame({"answer": [x[1] for x in lines]}, schema={"answer": pl.String}).select(
        local_timestamp("answer", FMT, BERLIN))["answer"].to_list()
    assert parsed.records["start_time"].to_list() == plain
    assert parsed.facts == facts(0, 0, 0, 0)


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_record_whose_only_ambiguous_stamp_is_its_end_is_not_counted(fmt: str) -> None:
    """The readers take the start instant from answer/start; an ambiguous end (even one its durations cannot
    place) leaves that instant exact, so the record is not reported as possibly one hour early."""
    end_only = ("2026-10-25 01:50:00", "2026-10-25 01:50:00", "2026-10-25 02:10:00", 999, 999)
    parsed = read_lines(fmt, [end_only])
    assert parsed.records["start_time"].to_list() == [utc(2026, 10, 24, 23, 50)]
    assert parsed.facts == facts(0, 0, 0, 0) and time_fold_note(parsed.facts) is None
