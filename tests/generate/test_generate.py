"""The sample-data generator: deterministic per seed, a realistic customer base, a complete fault ledger."""

from __future__ import annotations

import polars as pl
import pytest

from pipelines.generate import generate


@pytest.fixture(scope="module")
def gen(tmp_path_factory: pytest.TempPathFactory):
    return generate(tmp_path_factory.mktemp("a"), 150, "2026-10", seed=11, per_subscriber=25)


def _tree(root) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_gives_byte_identical_files(gen, tmp_path) -> None:
    again = generate(tmp_path / "b", 150, "2026-10", seed=11, per_subscriber=25)
    assert _tree(gen.out_dir) == _tree(again.out_dir)
    other = generate(tmp_path / "c", 150, "2026-10", seed=12, per_subscriber=25)
    assert _tree(gen.out_dir) != _tree(other.out_dir)


def test_customer_base_is_realistic(gen) -> None:
    acc = pl.read_csv(gen.accounts_csv, infer_schema=False)
    subs = pl.read_csv(gen.subscriptions_csv, infer_schema=False)
    assert {"consumer", "business", "vip", "government"} >= set(acc["segment"])
    assert {"consumer", "business"} <= set(acc["segment"])
    assert set(subs["plan_id"]) >= {"P_FAMILY", "P_BIZ", "PRE_PAYG", "PRE_BUNDLE"}
    members = acc.filter(pl.col("parent_account_id").is_not_null())
    assert members.height > 0 and set(members["parent_account_id"]) <= set(acc["account_id"])
    assert (acc["bill_cycle_day"] == "1").mean() > 0.8
    changed = subs.group_by("msisdn").agg(pl.col("plan_id").n_unique().alias("plans")).filter(pl.col("plans") > 1)
    assert changed.height == 1, "exactly one plan change mid-month"
    assert subs.filter(pl.col("valid_from").str.starts_with("2026-")).height >= 1


def test_fault_ledger_lists_every_kind(gen) -> None:
    kinds = {f.kind for f in gen.faults}
    assert kinds >= {"DUP_WITHIN_FILE", "DUP_ACROSS_FILES", "WHOLE_FILE_RESENT", "MALFORMED_LINE", "INVALID_FIELD",
                     "BAD_ENCODING", "CORRUPT_GZIP", "NEGATIVE_DURATION", "ABSURD_DURATION", "BAD_MSISDN",
                     "UNKNOWN_SUBSCRIBER", "MISSING_FILE", "LATE_ARRIVING", "FUTURE_TIMESTAMP", "REPEATED_SEQUENCE"}
    for fault in gen.faults:
        if fault.kind != "MISSING_FILE":
            assert fault.file in gen.files
    assert (gen.out_dir / "faults.csv").exists()


def test_usage_has_every_service_and_shape(gen) -> None:
    frames = [pl.read_csv(gen.landing_dir / k, infer_schema=False, encoding="utf8-lossy") for k in gen.files
              if k.endswith(".csv") and k.startswith(("msc-east", "smsc"))]
    frames += [pl.read_parquet(gen.landing_dir / k) for k in gen.files if k.endswith(".parquet")]
    text = pl.concat([f.select(pl.all().cast(pl.String)) for f in frames], how="vertical_relaxed")
    assert set(text["service"]) == {"voice", "sms", "data"}
    assert {"answered", "unanswered", "busy"} <= set(text["call_outcome"])
    assert set(text["visited_network"].drop_nulls()) - {""} <= {"FRAF1", "ESPTE", "GBRCN", "USAAT", "TURTC"}
    assert text.filter(pl.col("partial_seq").is_not_null() & (pl.col("partial_seq") != "")).height > 0
    assert {"1-000001"} <= set(text["snssai"].drop_nulls())
    hours = text.filter(pl.col("start_time").str.len_chars() == 20).select(
        pl.col("start_time").str.slice(11, 2).cast(pl.Int32).alias("h"))["h"]
    assert (hours == 3).sum() < (hours == 10).sum(), "night is quieter than morning"


def test_clean_mode_has_no_faults(tmp_path) -> None:
    data = generate(tmp_path, 40, "2026-10", seed=3, faults=False, per_subscriber=10, data_format="csv")
    assert data.faults == []
    assert all(k.endswith((".csv", ".csv.gz")) for k in data.files)
