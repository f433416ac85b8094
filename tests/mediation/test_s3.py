"""The whole mediate run with landing and lake on S3 (moto's server on 127.0.0.1)."""

from __future__ import annotations

from datetime import date

import polars as pl

from pipelines.common.partitions import read_published
from pipelines.common.storage import open_store
from pipelines.customers import import_customers
from pipelines.mediation.control import file_control_report
from pipelines.mediation.pipeline import load_file_manifest, mediate


def test_mediate_on_s3_matches_local(generated, mediated, s3_store_settings) -> None:
    keys = [k for k in generated.files if k.startswith("msc-west/")][:10]
    landing = open_store(s3_store_settings.landing_uri, s3_store_settings.s3)
    for key in keys:
        landing.write_bytes(key, (generated.landing_dir / key).read_bytes())
    import_customers(s3_store_settings, generated.accounts_csv.read_bytes(), generated.subscriptions_csv.read_bytes())
    result = mediate(s3_store_settings, keys=keys)
    assert result.files.height == len(keys) and result.balanced
    assert "quarantined" in set(result.files["status"]), "the truncated gzip is among these files"
    lake = open_store(s3_store_settings.lake_uri, s3_store_settings.s3)
    usage = read_published(lake, "usage")
    assert usage is not None and usage.height == result.totals()["usage"]
    local = read_published(open_store(mediated.settings.lake_uri), "usage")
    assert local is not None
    mine = usage.sort("record_id")
    theirs = local.filter(pl.col("source_file").is_in(keys)).sort("record_id")
    assert mine.equals(theirs), "S3 and local lakes hold the same records for the same files"
    assert mediate(s3_store_settings, keys=keys).files.height == 0
    assert load_file_manifest(s3_store_settings).height == len(keys)
    assert file_control_report(s3_store_settings, as_of=date(2026, 11, 1)).repeated.height == 1
