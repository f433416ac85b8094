"""The cheap screen in front of the row checks never lets a bad record through and never changes a reason."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from pipelines.mediation.validate import DIGIT_SCREENS, digits_may_fail, reasons
from schemas.usage import IMSI_RE, MSISDN_RE, PARTY_RE, row_reason, with_rule_columns

PATTERNS = {"BAD_MSISDN": MSISDN_RE, "BAD_IMSI": IMSI_RE, "BAD_OTHER_PARTY": PARTY_RE}
TRICKY = st.text(alphabet="0123456789+-_ .eE\u0663\uff11x\x00", max_size=17)


@settings(max_examples=400, deadline=None)
@given(values=st.lists(st.one_of(st.none(), TRICKY, st.from_regex(r"\A[0-9]{1,17}\Z")), min_size=1, max_size=40))
def test_screen_passes_only_values_the_regex_accepts(values: list[str | None]) -> None:
    """Sufficient, not necessary: whatever the screen calls certainly valid, the contract's regex accepts."""
    frame = pl.DataFrame({"v": values}, schema={"v": pl.String})
    for code, (_, shortest, longest, nonzero) in DIGIT_SCREENS.items():
        flagged = frame.select(digits_may_fail("v", shortest, longest, nonzero))[:, 0].to_list()
        for value, flag in zip(values, flagged, strict=True):
            if value is not None and not flag:
                assert re.fullmatch(PATTERNS[code].strip("^$"), value), (code, value)


def test_screen_covers_every_digit_check() -> None:
    assert {code: col for code, (col, *_) in DIGIT_SCREENS.items()} == {
        "BAD_MSISDN": "msisdn", "BAD_IMSI": "imsi", "BAD_OTHER_PARTY": "other_party"}


def test_reasons_equal_row_reason_including_values_only_the_regex_accepts() -> None:
    """Unicode digits pass the regex's ``\\d`` but not the integer parse: the screen flags them, the exact
    check then accepts them, so the reason stays null exactly as before."""
    base = {"service": "sms", "direction": "MO", "msisdn": "491511234567", "imsi": None, "other_party": "4930123",
            "duration_s": 0, "quantity": 1}
    changes = [
        {}, {"msisdn": "4915112345\u0663"}, {"imsi": "2" + "\u0662" * 14}, {"other_party": "\u0661\u0662\u0663"},
        {"msisdn": "0151123456"}, {"msisdn": "+4915112345"}, {"imsi": "-26201123456789"}, {"other_party": "+49"},
        {"other_party": "1" * 16}, {"service": "fax"}, {"duration_s": -1}, {"msisdn": None},
        {"msisdn": "491511234567890"}, {"imsi": "262011234567890"}, {"other_party": ""}, {"msisdn": "4915 1234567"},
    ]
    frame = pl.DataFrame([base | change for change in changes], schema={
        "service": pl.String, "direction": pl.String, "msisdn": pl.String, "imsi": pl.String, "other_party": pl.String,
        "duration_s": pl.Int64, "quantity": pl.Int64}).with_columns(
        pl.lit(datetime(2026, 10, 3, tzinfo=UTC)).alias("start_time"), pl.lit("answered").alias("call_outcome"),
        *(pl.lit(None, pl.Int64).alias(c) for c in ("uplink_bytes", "downlink_bytes")),
        *(pl.lit(None, pl.Int32).alias(c) for c in ("rating_group", "qos_class", "partial_seq")),
        *(pl.lit(None, pl.String).alias(c) for c in ("snssai", "visited_network")))
    checked = with_rule_columns(frame, None)
    expected = checked.select(row_reason().alias("reason_code"))[:, 0]
    assert expected.null_count() >= 3 and expected.n_unique() > 5, expected.to_list()
    assert expected[1:4].null_count() == 3, "Unicode digits pass the regex (and so must pass here)"
    assert reasons(checked).equals(expected)
    assert reasons(checked.filter(pl.col("service") == "voice").head(0)).len() == 0
