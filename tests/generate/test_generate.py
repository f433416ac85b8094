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


def test_every_real_format_is_generated(gen) -> None:
    from pipelines.mediation.readers import open_cdr_bytes
    from pipelines.mediation.readers.detect import HEAD_BYTES, detect_format

    formats = {}
    for key in gen.files:
        body = (gen.landing_dir / key).read_bytes()
        if any(f.kind == "CORRUPT_GZIP" and f.file == key for f in gen.faults):
            continue
        formats.setdefault(key.split("/")[0], set()).add(detect_format(key, open_cdr_bytes(key, body)[:HEAD_BYTES]))
    assert formats == {"msc-east": {"canonical_csv"}, "smsc": {"canonical_csv"}, "msc-west": {"asterisk_csv"},
                       "pgw-core": {"canonical_parquet"}, "pgw-5g": {"ber_3gpp"}, "fs-voice": {"freeswitch_json"}}


def test_switch_formats_carry_the_generated_records_exactly(tmp_path) -> None:
    """pgw-5g (BER) and fs-voice (FreeSWITCH JSON) read back to the same records the generator wrote as canonical
    CSV for the same seed (the fields each format carries)."""
    from pipelines.mediation.readers.canonical import read_canonical_csv
    from pipelines.mediation.readers.detect import read_landed_file
    from pipelines.mediation.sources import source_config

    real = generate(tmp_path / "real", 40, "2026-10", seed=3, per_subscriber=20, faults=False)
    plain = generate(tmp_path / "plain", 40, "2026-10", seed=3, per_subscriber=20, faults=False, data_format="csv")
    assert real.records == plain.records
    carried = {"pgw-5g": ["network_record_id", "msisdn", "imsi", "start_time", "quantity", "uplink_bytes",
                          "downlink_bytes", "rating_group", "snssai", "qos_class", "apn", "charging_id", "partial_seq"],
               "fs-voice": ["network_record_id", "direction", "msisdn", "other_party", "start_time", "duration_s",
                            "call_outcome"]}
    for source, cols in carried.items():
        zone = source_config(source).switch_timezone
        got = pl.concat([read_landed_file(source, k, (real.landing_dir / k).read_bytes(), zone).records
                         for k in real.files if k.startswith(f"{source}/")])
        want = pl.concat([read_canonical_csv(source, k, (plain.landing_dir / k).read_bytes()).records
                          for k in plain.files if k.startswith(f"{source}/")])
        assert got.height == want.height > 10
        assert got.select(cols).sort("network_record_id").equals(want.select(cols).sort("network_record_id")), source


def test_subscriptions_name_dealers_for_settlement(gen) -> None:
    subs = pl.read_csv(gen.subscriptions_csv, infer_schema=False)
    sold = subs.filter(pl.col("dealer_id").is_not_null())
    assert set(sold["dealer_id"]) == {"D_BER01", "D_HAM02", "D_WEB03"}
    assert sold.filter(pl.col("plan_id") == "P_BIZ").height == 0, "business lines are sold directly"
