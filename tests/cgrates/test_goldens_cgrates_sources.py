"""Golden costs stated by CGRateS's own tests, reproduced through ``telbill cgrates rate``.

Every case names the CGRateS source file and test function that asserts the expected cost
(repository cgrates/cgrates). The tariff plans are byte-for-byte copies (tests/fixtures/cgrates,
see SOURCES.md). Engine unit tests run with the engine's default ``globalRoundingDecimals = 6``
(engine/calldesc.go); the API integration tests run with the default config ``rounding_decimals: 5``.
"""

from __future__ import annotations

import pytest

# engine/calldesc_test.go, data set = engine/loader_csv_test.go (fixture engine_loader_csv_test)
ENGINE_CASES = [
    # (CGRateS test function, tenant, category, subject, destination, answer time, usage, expected)
    ("TestGetCost", "vdf", "0", "rif", "0256", "2012-02-02T17:30:00Z", "1h", "2701"),
    ("TestGetCostRounding", "cgrates.org", "call", "round", "49", "2017-02-02T17:30:00Z", "3m", "0.3001"),
    ("TestGetCostTimespans", "test", "0", "trp", "0256", "2013-10-08T09:23:02Z", "85s", "85"),
    ("TestGetCostRateGroups", "test", "0", "trp", "0256", "2013-10-07T14:50:00Z", "132s", "132"),
    ("TestFullDestNotFound", "vdf", "0", "rif", "0256308200", "2012-02-02T17:30:00Z", "1h", "2701"),
    ("TestSubjectNotFound", "vdf", "0", "not_exiting", "025740532", "2013-02-01T17:30:00Z", "1h", "2701"),
    ("TestMultipleRatingPlans", "vdf", "0", "rif", "0257308200", "2012-02-08T17:30:00Z", "1h", "2701"),
    ("TestSpansMultipleRatingPlans", "vdf", "0", "rif", "0257308200", "2012-02-07T23:50:00Z", "40m", "2100"),
    ("TestLessThanAMinute", "vdf", "0", "rif", "0257308200", "2012-02-08T23:50:00Z", "30s", "15"),
    ("TestUniquePrice", "vdf", "0", "rif", "0723045326", "2012-02-08T22:50:00Z", "1h0m21s", "1810.5"),
    ("TestMinutesCost", "vdf", "0", "rif", "0723", "2012-02-08T22:50:00Z", "1m50s", "55"),
    ("TestGetCostWithMaxCost", "cgrates.org", "call", "max", "0723123113", "2015-03-23T06:00:00Z", "30m",
     "1800"),
    ("TestGetCostRoundingIssue", "cgrates.org", "call", "dy", "0723123113", "2015-10-26T13:29:27Z", "24s",
     "0.17"),
    ("TestGetCostWithMaxCostFree", "cgrates.org", "call", "max", "0723123113", "2015-03-23T19:00:00Z",
     "30m", "10"),
    # ToR *data: a bare number is a count of units (nanoseconds for CGRateS); 1s and 1m5s of data
    ("TestCDGetCostANY", "cgrates.org", "data", "rif", "*any", "2014-03-04T06:00:00Z", "1000000000", "60"),
    ("TestCDDataGetCost", "cgrates.org", "data", "rif", "*any", "2014-03-04T06:00:00Z", "65000000000", "65"),
    ("TestGetCostZero", "vdf", "0", "rif", "0256", "2012-02-02T17:30:00Z", "0s", "0"),
]


def test_engine_calldesc_goldens(rate_cli) -> None:
    """engine/calldesc_test.go: CallDescriptor.GetCost expectations on the loader_csv_test data."""
    rows = [c[:7] for c in ENGINE_CASES]
    got = rate_cli("engine_loader_csv_test", rows, rounding_decimals=6)
    for name, *_, expected in ENGINE_CASES:
        assert got[name] == (expected, ""), name


def test_engine_subject_not_found_without_any_profile(rate_cli) -> None:
    """engine/calldesc_test.go TestSubjectNotFoundCostNegativeOne: no subject, no *any -> error."""
    got = rate_cli("engine_loader_csv_test", [
        ("neg", "cgrates.org", "0", "not_exiting", "025740532", "2013-02-01T17:30:00Z", "1h")], 6)
    assert got["neg"] == ("", "RATING_PLAN_NOT_FOUND")


def test_engine_unknown_destination(rate_cli) -> None:
    """engine/calldesc_test.go TestMaxDebitUnknowDest: 9999999999 -> UNAUTHORIZED_DESTINATION."""
    got = rate_cli("engine_loader_csv_test", [
        ("u", "cgrates.org", "call", "dy", "9999999999", "2015-10-26T13:29:27Z", "2s")], 6)
    assert got["u"] == ("", "UNAUTHORIZED_DESTINATION")


# general_tests/tutorial2_it_test.go testTutGetCost (APIerSv1.GetCost, rounding_decimals 5).
# "*now" answer times are replaced by a fixed ordinary weekday: those plans are time-independent.
TUTORIAL2_CASES = [
    ("std_1001_1002", "call", "1001", "1002", "2026-11-26T10:00:00Z", "45s", "0.55", ""),
    ("fallback_any_peak", "call", "1001", "1003", "2019-03-11T09:00:00Z", "45s", "1.4", ""),
    ("fallback_any_offpeak", "call", "1001", "1003", "2019-03-11T21:00:00Z", "45s", "0.55", ""),
    ("new_year_2001", "call", "1002", "2001", "2020-01-01T21:00:00Z", "45s", "0.55", ""),
    ("unauthorized_4003", "call", "1001", "4003", "2019-03-11T09:00:00Z", "1m", "", "UNAUTHORIZED_DESTINATION"),
    ("data_2048", "data", "1001", "", "2026-11-26T10:00:00Z", "2048", "2", ""),
    ("sms_1002", "sms", "1003", "1002", "2026-11-26T10:00:00Z", "1", "0.1", ""),
    ("sms_10", "sms", "1001", "1003", "2026-11-26T10:00:00Z", "1", "0.2", ""),
    ("sms_unauthorized", "sms", "1001", "2001", "2026-11-26T10:00:00Z", "1", "", "UNAUTHORIZED_DESTINATION"),
    ("per_call", "call", "RPF_SPECIAL_BLC", "1002", "2026-11-26T10:00:00Z", "5m", "0.1", ""),
    ("reseller1_45s", "reseller1", "1001", "1002", "2026-11-26T10:00:00Z", "45s", "0.1", ""),
    ("reseller1_10m45s", "reseller1", "1001", "1002", "2026-11-26T10:00:00Z", "10m45s", "0.1", ""),
]


def test_tutorial2_goldens(rate_cli) -> None:
    rows = [(c[0], "cgrates.org", c[1], c[2], c[3], c[4], c[5]) for c in TUTORIAL2_CASES]
    got = rate_cli("tutorial2", rows)
    for case in TUTORIAL2_CASES:
        assert got[case[0]] == (case[6], case[7]), case[0]


@pytest.mark.parametrize(("plan", "destination", "usage", "expected", "source"), [
    # general_tests/tutorial_it_test.go testTutorialGetCost: 0.4 connect + 0.2 first minute + 70 x 0.00167
    ("tutorial", "1002", "2m10s", "0.7169", "general_tests/tutorial_it_test.go testTutorialGetCost"),
    # apier/v1/costs_it_test.go testCostGetCost: usage given as nanoseconds "120000000000"
    ("tutorial", "1002", "120000000000", "0.7002", "apier/v1/costs_it_test.go testCostGetCost"),
    ("tp_destination_with_any", "1002", "1m", "0.01",
     "general_tests/destination_combined_it_test.go testDestinationGetCostFor1002"),
    ("tp_destination_with_any", "1003", "1m", "0.3",
     "general_tests/destination_combined_it_test.go testDestinationGetCostFor1003"),
])
def test_api_goldens(rate_cli, plan: str, destination: str, usage: str, expected: str, source: str) -> None:
    got = rate_cli(plan, [("x", "cgrates.org", "call", "1001", destination, "2026-11-26T10:00:00Z", usage)])
    assert got["x"] == (expected, ""), source


def test_testtp_goldens(rate_cli) -> None:
    """apier/v1/apier_it_test.go on the testtp plan (rounding_decimals 5):
    testApierResponderGetCost: 1001 -> +4917621621391, 2013-08-07 17:30:00 + 90s -> 90 (1 per second);
    testApierITGetCost: data, 1001, usage 640113 -> 128.024 (0.002 per 10 units, 640120 units)."""
    got = rate_cli("testtp", [
        ("voice", "cgrates.org", "call", "1001", "+4917621621391", "2013-08-07T17:30:00Z", "1m30s"),
        ("data", "cgrates.org", "data", "1001", "", "2026-11-26T10:00:00Z", "640113"),
    ])
    assert got == {"voice": ("90", ""), "data": ("128.024", "")}
