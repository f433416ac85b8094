"""The mediation and customer commands refuse bad input with one stderr line and exit code 2, never a
traceback, and write nothing when they refuse (run through the real ``telbill`` entry, ``pipelines.cli.main``)."""

from __future__ import annotations

import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

from pipelines.cli import main
from pipelines.common.cli_errors import S3_CREDENTIALS_HINT
from pipelines.common.settings import Settings
from pipelines.mediation.control import file_control_report

PROJECT_ROOT = Path(__file__).resolve().parents[2]
TARIFFS = str(PROJECT_ROOT / "tariffs")


def _opts(landing: str, lake: str) -> list[str]:
    return ["--landing", landing, "--lake", lake, "--tariffs", TARIFFS]


def _s3_env(monkeypatch: pytest.MonkeyPatch, endpoint: str, credentials: bool = True) -> None:
    """The environment ``telbill`` reads its S3 settings from (``Settings.from_env``)."""
    monkeypatch.setenv("TELBILL_S3_ENDPOINT_URL", endpoint)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing") if credentials else monkeypatch.delenv(name, raising=False)


def test_mediate_refuses_a_missing_local_landing_area(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    landing, lake = tmp_path / "no-such-landing", tmp_path / "lake"
    assert main([*_opts(str(landing), str(lake)), "mediate"]) == 2
    captured = capsys.readouterr()
    assert captured.err == (f"telbill mediate: error: LANDING_MISSING: landing area {landing} does not exist "
                            "(no such folder)\n")
    assert captured.out == ""
    assert not lake.exists(), "a refused run writes nothing"


def test_mediate_on_an_existing_empty_landing_area_is_fine(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "landing").mkdir()
    assert main([*_opts(str(tmp_path / "landing"), str(tmp_path / "lake")), "mediate"]) == 0
    assert capsys.readouterr().out.startswith("mediated 0 new files (0 already processed), 0 usage dates rebuilt\n")


def test_mediate_refuses_a_missing_s3_landing_bucket(tmp_path: Path, moto_server: str, s3_bucket: str,
                                                      monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    _s3_env(monkeypatch, moto_server)
    missing = f"{s3_bucket}-missing"
    assert main([*_opts(f"s3://{missing}/landing", f"s3://{s3_bucket}/lake"), "mediate"]) == 2
    assert capsys.readouterr().err == (f"telbill mediate: error: LANDING_MISSING: landing area s3://{missing}/landing "
                                       f"does not exist (no bucket {missing})\n")
    # an existing bucket with nothing under the landing prefix is an empty landing area, not an error
    assert main([*_opts(f"s3://{s3_bucket}/landing", f"s3://{s3_bucket}/lake"), "mediate"]) == 0
    assert capsys.readouterr().out.startswith("mediated 0 new files (0 already processed)")


def test_mediate_refuses_a_key_that_is_not_landed(tmp_path: Path, make_csv, capsys: pytest.CaptureFixture[str]) -> None:
    landing, lake = tmp_path / "landing", tmp_path / "lake"
    (landing / "msc-east").mkdir(parents=True)
    (landing / "msc-east" / "msc-east_000001_20261003.csv").write_bytes(make_csv([]))
    argv = [*_opts(str(landing), str(lake)), "mediate", "--file", "msc-east/nope.csv",
            "--file", "msc-east/msc-east_000001_20261003.csv"]
    assert main(argv) == 2
    assert capsys.readouterr().err == (f"telbill mediate: error: NOT_LANDED: not in the landing area {landing}: "
                                       "msc-east/nope.csv\n")
    assert not lake.exists(), "the landed key given with it is not mediated either: the run is refused as a whole"


def test_mediate_with_an_s3_lake_and_no_credentials(tmp_path: Path, moto_server: str, monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    from pipelines.common.storage import s3_client

    _s3_env(monkeypatch, moto_server, credentials=False)
    for name in ("AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
                 "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_WEB_IDENTITY_TOKEN_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    s3_client.cache_clear()  # credentials are resolved when a client is built
    (tmp_path / "landing").mkdir()
    assert main([*_opts(str(tmp_path / "landing"), "s3://telbill-lake/lake"), "mediate"]) == 2
    assert capsys.readouterr().err == (
        "telbill mediate: error: STORE_UNREACHABLE: cannot reach the lake s3://telbill-lake/lake: Unable to locate "
        f"credentials{S3_CREDENTIALS_HINT}\n")
    # the report reads the lake straight away: the same one-line refusal
    assert main([*_opts(str(tmp_path / "landing"), "s3://telbill-lake/lake"),
                 "mediation", "report", "--as-of", "2026-11-01"]) == 2
    assert capsys.readouterr().err == f"telbill mediation report: error: Unable to locate credentials{S3_CREDENTIALS_HINT}\n"
    s3_client.cache_clear()


@pytest.mark.parametrize(("option", "value", "message"), [
    ("--as-of", "2026-13-01", "argument --as-of: '2026-13-01' is not a date (YYYY-MM-DD)"),
    ("--as-of", "yesterday", "argument --as-of: 'yesterday' is not a date (YYYY-MM-DD)"),
    ("--quiet-days", "-1", "argument --quiet-days: '-1' is not a whole number of days >= 1"),
    ("--quiet-days", "0", "argument --quiet-days: '0' is not a whole number of days >= 1"),
    ("--quiet-days", "two", "argument --quiet-days: 'two' is not a whole number of days >= 1"),
])
def test_report_refuses_a_bad_date_or_quiet_days(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                  option: str, value: str, message: str) -> None:
    args = {"--as-of": "2026-11-01", option: value}
    argv = [*_opts(str(tmp_path / "landing"), str(tmp_path / "lake")), "mediation", "report",
            *(part for pair in args.items() for part in pair)]
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1] == f"telbill mediation report: error: {message}"


def test_report_function_refuses_non_positive_quiet_days(tmp_path: Path) -> None:
    settings = Settings(landing_uri=str(tmp_path / "landing"), lake_uri=str(tmp_path / "lake"))
    with pytest.raises(ValueError, match="quiet_days must be a whole number of days >= 1, not -1"):
        file_control_report(settings, date(2026, 11, 1), quiet_days=-1)


def test_customers_import_names_a_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "missing.csv"
    readable = tmp_path / "readable.csv"  # never parsed: both files are read before either is validated
    readable.write_text("account_id\n")
    base = _opts(str(tmp_path / "landing"), str(tmp_path / "lake"))
    assert main([*base, "customers", "import", "--accounts", str(missing),
                 "--subscriptions", str(readable)]) == 2
    assert capsys.readouterr().err == (f"telbill customers import: error: cannot read the accounts file {missing}: "
                                       "No such file or directory\n")
    assert main([*base, "customers", "import", "--accounts", str(readable),
                 "--subscriptions", str(tmp_path)]) == 2
    assert capsys.readouterr().err == (f"telbill customers import: error: cannot read the subscriptions file "
                                       f"{tmp_path}: Is a directory\n")
    assert not (tmp_path / "lake").exists(), "nothing is published when either file cannot be read"


def test_customers_import_refusal_is_one_prefixed_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    accounts, subscriptions = tmp_path / "accounts.csv", tmp_path / "subscriptions.csv"
    accounts.write_text("account_id\nA1\n")  # required columns missing
    subscriptions.write_text("subscription_id\nS1\n")
    assert main([*_opts(str(tmp_path / "landing"), str(tmp_path / "lake")), "customers", "import",
                 "--accounts", str(accounts), "--subscriptions", str(subscriptions)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("telbill customers import: error: ") and "Traceback" not in err
    assert not (tmp_path / "lake").exists()


@pytest.mark.parametrize("period", ["2026-13", "2026-1", "9999-12"])
def test_generate_with_a_bad_period_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                     period: str) -> None:
    with pytest.raises(SystemExit) as exc:
        main([*_opts(str(tmp_path / "landing"), str(tmp_path / "lake")), "generate", "--subscribers", "2",
              "--period", period, "--out", str(tmp_path / "gen"), "--no-upload"])
    assert exc.value.code == 2
    assert "telbill generate: error: argument --period: period" in capsys.readouterr().err
    assert not (tmp_path / "gen").exists()


def test_the_installed_entry_point_prints_one_line_and_no_traceback(tmp_path: Path) -> None:
    """What a user sees in a shell: the real process, its exit code and its whole stderr."""
    (tmp_path / "landing").mkdir()
    proc = subprocess.run([sys.executable, "-m", "pipelines.cli", *_opts(str(tmp_path / "landing"),
                                                                          str(tmp_path / "lake")),
                           "mediate", "--file", "msc-east/nope.csv"],
                          capture_output=True, text=True, cwd=PROJECT_ROOT, check=False)
    assert proc.returncode == 2
    assert proc.stderr == (f"telbill mediate: error: NOT_LANDED: not in the landing area {tmp_path / 'landing'}: "
                           "msc-east/nope.csv\n")
