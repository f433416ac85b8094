"""Customer import: validated, versioned by content, refused as a whole with line-level reasons."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from pipelines.customers import CustomerImportError, import_customers, load_accounts, load_subscriptions
from pipelines.generate import generate
from schemas.contracts import ACCOUNT_SCHEMA, SUBSCRIPTION_SCHEMA


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, bytes]:
    data = generate(tmp_path_factory.mktemp("gen"), 60, "2026-10", seed=5, per_subscriber=2)
    return data.accounts_csv.read_bytes(), data.subscriptions_csv.read_bytes()


def test_import_publishes_and_loads(local_settings, base) -> None:
    accounts, subs = base
    result = import_customers(local_settings, accounts, subs)
    acc = load_accounts(local_settings)
    sub = load_subscriptions(local_settings)
    assert acc.schema == pl.Schema(ACCOUNT_SCHEMA)
    assert sub.schema == pl.Schema(SUBSCRIPTION_SCHEMA)
    assert acc.height == result.accounts == accounts.count(b"\n") - 1
    assert sub.height == result.subscriptions == subs.count(b"\n") - 1
    assert set(sub["account_id"]) <= set(acc["account_id"])


def test_same_files_same_version_changed_file_new_version(local_settings, base) -> None:
    accounts, subs = base
    first = import_customers(local_settings, accounts, subs)
    again = import_customers(local_settings, accounts, subs)
    assert first == again
    changed = import_customers(local_settings, accounts, subs.replace(b"P_BIZ", b"P_UNLTD", 1))
    assert changed.subscriptions_version != first.subscriptions_version
    assert changed.accounts_version == first.accounts_version
    assert (load_subscriptions(local_settings)["plan_id"] == "P_UNLTD").sum() > 0


def test_empty_lake_loads_empty_frames(local_settings) -> None:
    assert load_accounts(local_settings).height == 0
    assert load_subscriptions(local_settings).schema == pl.Schema(SUBSCRIPTION_SCHEMA)


def _line(data: bytes, n: int) -> bytes:
    return data.split(b"\n")[n - 1]


@pytest.mark.parametrize(
    ("which", "edit", "message"),
    [
        ("accounts", lambda line: line.replace(b",1,DE-", b",31,DE-", 1), "accounts.csv:2: bill_cycle_day"),
        ("accounts", lambda line: line.replace(b",EUR,", b",euro,", 1), "accounts.csv:2: currency"),
        ("subs", lambda line: line.replace(b",PRE_PAYG,", b",P_GOLD,").replace(b",P_BASIC,", b",P_GOLD,")
         .replace(b",P_UNLTD,", b",P_GOLD,").replace(b",P_FAMILY,", b",P_GOLD,").replace(b",P_BIZ,", b",P_GOLD,"),
         "not in the catalogue"),
        ("subs", lambda line: line.replace(b",A0", b",ZZ", 1), "is not an imported account"),
        ("subs", lambda line: line.replace(b",4915", b",04915", 1), "subscriptions.csv:2: msisdn"),
        ("subs", lambda line: line.replace(b"2024-01-01T00:00:00Z", b"yesterday", 1), "valid_from 'yesterday'"),
    ],
)
def test_bad_rows_refuse_the_import_with_line_numbers(local_settings, base, which, edit, message) -> None:
    accounts, subs = base
    target = accounts if which == "accounts" else subs
    lines = target.split(b"\n")
    lines[1] = edit(lines[1])
    assert lines[1] != target.split(b"\n")[1]
    broken = b"\n".join(lines)
    with pytest.raises(CustomerImportError) as err:
        if which == "accounts":
            import_customers(local_settings, broken, subs)
        else:
            import_customers(local_settings, accounts, broken)
    assert message in str(err.value)
    assert load_accounts(local_settings).height == 0, "nothing may be published by a refused import"


def test_overlapping_subscriptions_for_one_msisdn_are_refused(local_settings, base) -> None:
    accounts, subs = base
    first = _line(subs, 2)
    copy = first.replace(b"S0", b"X0", 1)
    with pytest.raises(CustomerImportError, match="overlapping subscriptions"):
        import_customers(local_settings, accounts, subs.rstrip(b"\n") + b"\n" + copy + b"\n")


def test_missing_column_is_named(local_settings, base) -> None:
    accounts, subs = base
    header, rest = accounts.split(b"\n", 1)
    with pytest.raises(CustomerImportError, match=r"missing \['segment'\]"):
        import_customers(local_settings, header.replace(b",segment", b",kind") + b"\n" + rest, subs)


def test_import_to_s3(s3_store_settings, base) -> None:
    accounts, subs = base
    import_customers(s3_store_settings, accounts, subs)
    assert load_subscriptions(s3_store_settings).height == subs.count(b"\n") - 1


def test_cli_import(local_settings, base, tmp_path: Path, capsys) -> None:
    from pipelines.cli import main

    accounts, subs = base
    (tmp_path / "a.csv").write_bytes(accounts)
    (tmp_path / "s.csv").write_bytes(subs.replace(b",P_BIZ,", b",NOPE,", 1))
    args = ["--lake", local_settings.lake_uri, "--tariffs", local_settings.tariffs_dir, "customers", "import",
            "--accounts", str(tmp_path / "a.csv"), "--subscriptions", str(tmp_path / "s.csv")]
    assert main(args) == 2
    assert "NOPE" in capsys.readouterr().err
    (tmp_path / "s.csv").write_bytes(subs)
    assert main(args) == 0
    assert "imported" in capsys.readouterr().out


def _without_dealer(subs: bytes) -> bytes:
    frame = pl.read_csv(subs, infer_schema=False).drop("dealer_id")
    return frame.write_csv().encode()


def test_dealer_id_is_imported_optional_and_checked_against_the_dealer_table(local_settings, base) -> None:
    accounts, subs = base
    import_customers(local_settings, accounts, subs)
    loaded = load_subscriptions(local_settings)
    dealers = set(pl.read_csv(Path(local_settings.tariffs_dir) / "dealers.csv")["dealer_id"])
    sold = loaded.filter(pl.col("dealer_id").is_not_null())
    assert 0 < sold.height < loaded.height and set(sold["dealer_id"]) <= dealers
    # files written before the column existed still import; the column is then null
    import_customers(local_settings, accounts, _without_dealer(subs))
    assert load_subscriptions(local_settings)["dealer_id"].null_count() == loaded.height
    line = _line(subs, 2)
    bad = subs.replace(line, line.rsplit(b",", 1)[0] + b",D_NOWHERE", 1)
    with pytest.raises(CustomerImportError, match="dealer_id 'D_NOWHERE' is not in tariffs/dealers.csv"):
        import_customers(local_settings, accounts, bad)
