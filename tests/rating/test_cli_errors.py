"""Rating CLI refusals through the real ``telbill`` entry point: strict periods, missing lake, period without
usage, S3 without credentials, explain of a record held by mediation, a CGRateS folder without a plan.

Every refusal is one line on stderr with exit code 2 and writes nothing.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from pipelines.cli import main
from pipelines.common.partitions import published_manifests, read_published, write_partition
from pipelines.common.periods import parse_period
from pipelines.common.settings import Settings
from pipelines.common.storage import open_store, s3_client
from pipelines.mediation.guiding import SUSPENSE_MESSAGES
from pipelines.mediation.pipeline import SUSPENSE as MEDIATION_SUSPENSE
from pipelines.mediation.pipeline import SUSPENSE_SCHEMA
from rating.helpers import TARIFFS, accounts_frame, publish_usage, usage_frame, usage_row

PERIOD_ERROR = "period must be YYYY-MM with month 01-12, got {!r}"
ACCOUNTS = [("ACC1", None), ("ACC2", None)]
HELD_ID = "held-unknown-subscriber"


def _publish_lake(settings: Settings) -> pl.DataFrame:
    """October usage of two Berlin accounts, one record that is November local time, one held by mediation."""
    usage = usage_frame([
        usage_row("oct-1", "2026-10-05 10:00:00", 60, other_party="4930123456"),
        usage_row("oct-2", "2026-10-20 18:30:00", 1, service="sms", other_party="4930123456", account_id="ACC2"),
        usage_row("nov-edge", "2026-10-31 23:30:00", 60, other_party="4930123456"),  # Nov 1 00:30 in Berlin
    ])
    publish_usage(settings, usage)
    lake = open_store(settings.lake_uri, settings.s3)
    write_partition(lake, "customers/accounts", {}, "acc", accounts_frame(*ACCOUNTS))
    held = {**usage_row(HELD_ID, "2026-10-07 15:15:20", 42, other_party="4930123456"),
            "subscription_id": None, "account_id": None, "plan_id": None, "payment_type": None,
            "msisdn": "491519990002", "source_file": "msc-west/msc-west_000008_20261007.csv.gz",
            "suspense_reason": "UNKNOWN_SUBSCRIBER", "suspense_message": SUSPENSE_MESSAGES["UNKNOWN_SUBSCRIBER"]}
    frame = pl.DataFrame([held], schema=SUSPENSE_SCHEMA, orient="row")
    write_partition(lake, MEDIATION_SUSPENSE, {"usage_date": "2026-10-07"}, "held", frame)
    return usage


@pytest.fixture
def lake(local_settings: Settings) -> Settings:
    _publish_lake(local_settings)
    return local_settings


def telbill(settings: Settings, *args: str) -> int:
    return main(["--lake", settings.lake_uri, "--tariffs", str(TARIFFS), *args])


def _usage_error(capsys, settings: Settings, *args: str) -> str:
    """Run a command argparse must refuse; returns the last stderr line."""
    with pytest.raises(SystemExit) as exc:
        telbill(settings, *args)
    assert exc.value.code == 2
    return capsys.readouterr().err.strip().splitlines()[-1]


def _refusal(capsys, settings: Settings, *args: str) -> str:
    """Run a command that must be refused (exit 2) with exactly one stderr line and nothing on stdout."""
    assert telbill(settings, *args) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.endswith("\n") and err.count("\n") == 1, err
    return err.strip()


@pytest.mark.parametrize("good", ["2026-10", "2026-01", "2026-12", "1999-09", "1900-01", "9998-12"])
def test_parse_period_accepts_yyyy_mm(good: str) -> None:
    assert parse_period(good) == (int(good[:4]), int(good[5:]))


@pytest.mark.parametrize("bad", ["2026-1", "2026-13", "2026-00", "26-10", "2026-010", "02026-10", " 2026-10",
                                 "2026-10 ", "2026-10\n", "2026/10", "2026_10", "2026-1O", "", "2026-+1",
                                 "٢٠٢٦-١٠"])
def test_parse_period_refuses_anything_else(bad: str) -> None:
    with pytest.raises(ValueError) as exc:
        parse_period(bad)
    assert str(exc.value) == PERIOD_ERROR.format(bad)


@pytest.mark.parametrize("bad", ["0000-01", "0001-01", "1899-12", "9999-12"])
def test_parse_period_refuses_years_whose_window_cannot_be_represented(bad: str) -> None:
    # a bill period's window reaches into the next month in any time zone: year 10000 or year 0 cannot be dates
    with pytest.raises(ValueError) as exc:
        parse_period(bad)
    assert str(exc.value) == f"period year must be 1900-9998, got {bad!r}"


@pytest.mark.parametrize("command", [["rate", "--period"], ["rerate", "--period"], ["explain", "X", "--period"],
                                     ["simulate", "--catalogue", str(TARIFFS), "--period"]])
@pytest.mark.parametrize("period", ["2026-13", "2026-1"])
def test_bad_period_is_a_usage_error_and_writes_nothing(capsys, local_settings: Settings, command: list[str],
                                                         period: str) -> None:
    line = _usage_error(capsys, local_settings, *command, period)
    assert line == f"telbill {command[0]}: error: argument --period: {PERIOD_ERROR.format(period)}"
    assert not Path(local_settings.lake_uri).exists()


@pytest.mark.parametrize("extra", [[], ["--allow-empty"]])
def test_rate_into_a_lake_that_does_not_exist_is_refused_and_not_created(capsys, local_settings: Settings,
                                                                        extra: list[str]) -> None:
    err = _refusal(capsys, local_settings, "rate", "--period", "2026-10", *extra)
    assert err == (f"telbill rate: error: lake {local_settings.lake_uri} does not exist (nothing was mediated there; "
                   "check --lake or $TELBILL_LAKE_URI)")
    assert not Path(local_settings.lake_uri).exists()


@pytest.mark.parametrize("command", ["rerate", "simulate", "explain"])
def test_other_commands_on_a_missing_lake_are_refused(capsys, local_settings: Settings, command: str) -> None:
    args = {"rerate": ["rerate", "--period", "2026-10"], "explain": ["explain", "X"],
            "simulate": ["simulate", "--period", "2026-10", "--catalogue", str(TARIFFS)]}[command]
    assert _refusal(capsys, local_settings, *args).startswith(f"telbill {command}: error: lake {local_settings.lake_uri} "
                                                              "does not exist")
    assert not Path(local_settings.lake_uri).exists()


def _no_usage(command: str, period: str, lake: str) -> str:
    hint = " or pass --allow-empty to publish an empty period" if command == "rate" else ""
    return (f"telbill {command}: error: period {period} has no published usage in {lake}: nothing to {command} "
            f"(run `telbill mediate` for that period's files first{hint})")


# 2027-03: no usage partition at all; 2026-09: the October partitions are in its usage window but none of their
# records starts in an account's September bill period
@pytest.mark.parametrize("period", ["2027-03", "2026-09"])
def test_rate_refuses_a_period_without_usage_unless_allowed(capsys, lake: Settings, period: str) -> None:
    store = open_store(lake.lake_uri)
    before = store.list()
    assert _refusal(capsys, lake, "rate", "--period", period) == _no_usage("rate", period, lake.lake_uri)
    assert store.list() == before  # nothing written, nothing published

    assert telbill(lake, "rate", "--period", period, "--allow-empty") == 0
    assert capsys.readouterr().out.startswith(f"period {period}: 0 usage records -> 0 rated + 0 suspense")
    assert read_published(store, "rated", {"period": period}).height == 0


def test_rate_accepts_a_period_whose_only_record_is_at_the_usage_window_edge(capsys, lake: Settings) -> None:
    # the one November record was used on 2026-10-31 UTC (Nov 1 in Berlin): the period is not empty
    assert telbill(lake, "rate", "--period", "2026-11") == 0
    assert capsys.readouterr().out.startswith("period 2026-11: 1 usage records -> 1 rated + 0 suspense")
    rated = read_published(open_store(lake.lake_uri), "rated", {"period": "2026-11"})
    assert rated["record_id"].to_list() == ["nov-edge"]
    assert telbill(lake, "rate", "--period", "2026-10") == 0
    assert capsys.readouterr().out.startswith("period 2026-10: 2 usage records -> 2 rated + 0 suspense")


def test_simulate_refuses_a_period_without_usage(capsys, lake: Settings) -> None:
    err = _refusal(capsys, lake, "simulate", "--period", "2027-03", "--catalogue", str(TARIFFS))
    assert err == _no_usage("simulate", "2027-03", lake.lake_uri)


def test_rerate_of_a_period_never_rated_is_refused(capsys, lake: Settings) -> None:
    err = _refusal(capsys, lake, "rerate", "--period", "2026-10")
    assert err == ("telbill rerate: error: period 2026-10 has no published rated run: run `telbill rate --period 2026-10` "
                   "first")
    assert published_manifests(open_store(lake.lake_uri), "rated") == []


def test_missing_catalogue_folders_are_one_line(capsys, lake: Settings, tmp_path: Path) -> None:
    missing = tmp_path / "no-tariffs"
    assert main(["--lake", lake.lake_uri, "--tariffs", str(missing), "rate", "--period", "2026-10"]) == 2
    assert capsys.readouterr().err == f"telbill rate: error: catalogue folder {missing} does not exist (check --tariffs)\n"
    err = _refusal(capsys, lake, "simulate", "--period", "2026-10", "--catalogue", str(missing))
    assert err == f"telbill simulate: error: draft catalogue folder {missing} does not exist (check --catalogue)"


def test_a_broken_catalogue_lists_its_problems_without_a_traceback(capsys, lake: Settings, tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "rates.csv").write_text("rate_id\n", encoding="utf-8")
    assert main(["--lake", lake.lake_uri, "--tariffs", str(broken), "rate", "--period", "2026-10"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("telbill rate: ") and "catalogue problem" in err
    assert "Traceback" not in err and "plans.csv: file missing" in err
    assert published_manifests(open_store(lake.lake_uri), "rated") == []


def _without_aws_credentials(monkeypatch, tmp_path: Path, endpoint: str) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
                 "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                 "AWS_WEB_IDENTITY_TOKEN_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("TELBILL_S3_ENDPOINT_URL", endpoint)  # never the internet


def test_s3_lake_without_credentials_is_one_line(capsys, monkeypatch, tmp_path: Path, moto_server: str) -> None:
    _without_aws_credentials(monkeypatch, tmp_path, moto_server)
    s3_client.cache_clear()  # a client built earlier with other credentials must not be reused
    try:
        code = main(["--lake", "s3://telbill-demo/lake", "--tariffs", str(TARIFFS), "rate", "--period", "2026-10"])
    finally:
        s3_client.cache_clear()
    out, err = capsys.readouterr()
    assert code == 2 and out == "" and err.count("\n") == 1
    assert err.strip() == ("telbill rate: error: cannot use the lake s3://telbill-demo/lake: Unable to locate credentials "
                           "(S3 credentials: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or an AWS profile; "
                           "endpoint: TELBILL_S3_ENDPOINT_URL)")


def test_s3_lake_in_a_missing_bucket_is_one_line(capsys, monkeypatch, moto_server: str) -> None:
    monkeypatch.setenv("TELBILL_S3_ENDPOINT_URL", moto_server)
    code = main(["--lake", "s3://telbill-no-such-bucket/lake", "--tariffs", str(TARIFFS), "rate", "--period",
                 "2026-10"])
    out, err = capsys.readouterr()
    assert code == 2 and out == "" and err.count("\n") == 1
    assert err.startswith("telbill rate: error: cannot use the lake s3://telbill-no-such-bucket/lake: ")
    assert "NoSuchBucket" in err and "S3 credentials" not in err


def test_rate_on_an_s3_lake_through_the_cli(capsys, monkeypatch, s3_store_settings: Settings) -> None:
    monkeypatch.setenv("TELBILL_S3_ENDPOINT_URL", s3_store_settings.s3.endpoint_url)
    _publish_lake(s3_store_settings)
    assert _refusal(capsys, s3_store_settings, "rate", "--period", "2027-03") == _no_usage(
        "rate", "2027-03", s3_store_settings.lake_uri)
    assert telbill(s3_store_settings, "rate", "--period", "2026-10") == 0
    assert capsys.readouterr().out.startswith("period 2026-10: 2 usage records -> 2 rated + 0 suspense")


@pytest.mark.parametrize("period", [[], ["--period", "2026-10"]])
def test_explain_a_record_held_in_mediation_suspense(capsys, lake: Settings, period: list[str]) -> None:
    assert telbill(lake, "explain", HELD_ID, *period) == 0
    text = capsys.readouterr().out
    assert text.splitlines()[0] == (
        f"Record {HELD_ID} has not been rated: it is in mediation suspense (dataset mediation/suspense, usage date "
        f"2026-10-07) with reason UNKNOWN_SUBSCRIBER ({SUSPENSE_MESSAGES['UNKNOWN_SUBSCRIBER']}).")
    assert "msisdn 491519990002" in text and "msc-west_000008_20261007.csv.gz" in text
    assert "`telbill mediation recycle`" in text and "`telbill rate --period P`" in text


def test_explain_outside_the_records_period_and_unknown_records(capsys, lake: Settings) -> None:
    # September's usage window ends before the held record's usage date: it is not searched there
    assert telbill(lake, "explain", HELD_ID, "--period", "2026-08") == 1
    assert capsys.readouterr().err.strip() == (
        f"record {HELD_ID} is not in the published rated, rating suspense or mediation suspense data of period "
        "2026-08 (rejected, filtered and duplicate records: see docs/mediation.md)")
    assert telbill(lake, "explain", "no-such-record") == 1
    assert "of any period" in capsys.readouterr().err


def test_explain_a_rated_record_still_explains_the_charge(capsys, lake: Settings) -> None:
    assert telbill(lake, "rate", "--period", "2026-10") == 0
    capsys.readouterr()
    assert telbill(lake, "explain", "oct-1", "--period", "2026-10") == 0
    assert capsys.readouterr().out.startswith("Record oct-1: voice MO to 4930123456 of 60 s")


def test_rerate_help_explains_the_period(capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["rerate", "--help"])
    assert exc.value.code == 0
    help_text = " ".join(capsys.readouterr().out.split())
    assert "--period PERIOD bill period YYYY-MM (four-digit year, two-digit month 01-12)" in help_text
    assert "the period must have been rated" in help_text


def _cgrates(tmp_path: Path, plan: Path) -> tuple[int, Path]:
    events = tmp_path / "events.csv"
    events.write_text("id,tenant,category,subject,destination,start_time,usage\n"
                      "e1,cgrates.org,call,1001,1002,2026-10-05T10:00:00Z,60s\n", encoding="utf-8")
    out = tmp_path / "costs.csv"
    return main(["cgrates", "rate", "--tariffplan", str(plan), "--events", str(events), "--out", str(out)]), out


def test_cgrates_refuses_an_empty_folder(capsys, tmp_path: Path) -> None:
    plan = tmp_path / "plan"
    plan.mkdir()
    (plan / "Timings.csv").write_text("#Id,Years,Months,MonthDays,WeekDays,Time\n", encoding="utf-8")
    code, out = _cgrates(tmp_path, plan)
    assert code == 2 and not out.exists()
    assert capsys.readouterr().err.strip() == (
        f"telbill cgrates rate: error: {plan} is not a CGRateS tariff-plan folder: missing Rates.csv, DestinationRates.csv, "
        "RatingPlans.csv, RatingProfiles.csv (required: Rates.csv, DestinationRates.csv, RatingPlans.csv, "
        "RatingProfiles.csv)")


def test_cgrates_refuses_the_parent_of_plan_folders_and_names_them(capsys, tmp_path: Path) -> None:
    parent = Path(__file__).resolve().parents[1] / "fixtures" / "cgrates"
    code, out = _cgrates(tmp_path, parent)
    err = capsys.readouterr().err.strip()
    assert code == 2 and not out.exists() and err.count("\n") == 0
    assert err.startswith(f"telbill cgrates rate: error: {parent} is not a CGRateS tariff-plan folder: missing Rates.csv")
    assert "plan folders inside it: " in err and "tutorial" in err


def test_cgrates_refuses_a_plan_without_rating_profiles(capsys, tmp_path: Path) -> None:
    plan = tmp_path / "plan"
    plan.mkdir()
    for name, header in {"Rates": "#Id,ConnectFee,Rate,RateUnit,RateIncrement,GroupIntervalStart",
                         "DestinationRates": "#Id,DestinationId,RatesTag,RoundingMethod,RoundingDecimals,"
                                             "MaxCost,MaxCostStrategy",
                         "RatingPlans": "#Id,DestinationRatesId,TimingTag,Weight",
                         "RatingProfiles": "#Tenant,Category,Subject,ActivationTime,RatingPlanId,"
                                           "RatesFallbackSubject"}.items():
        (plan / f"{name}.csv").write_text(header + "\n", encoding="utf-8")
    code, out = _cgrates(tmp_path, plan)
    assert code == 2 and not out.exists()
    assert capsys.readouterr().err.strip() == ("telbill cgrates rate: error: RatingProfiles.csv has no rating profile rows: "
                                               "no event could be rated")
