"""The real switch samples (refdata, copied to tests/fixtures/cdr-samples) through the whole mediate run.

Their numbers are SIP user names and test extensions, not our subscribers: mediation must still
account for every record (rejected with a reason, filtered or in suspense), never crash, and
quarantine what is not a CDR format at all (the CEL event log).
"""

from __future__ import annotations

import gzip
from pathlib import Path

import polars as pl

from pipelines.common.partitions import read_published
from pipelines.common.storage import open_store
from pipelines.mediation.pipeline import mediate

SAMPLES = Path(__file__).resolve().parents[1] / "fixtures" / "cdr-samples"


def test_real_samples_are_all_accounted_for(local_settings) -> None:
    landing = open_store(local_settings.landing_uri)
    files = {
        "pbx-a/pbx-a_000001_20090114.csv": (SAMPLES / "asterisk_cdr_csv_testsuite_cdrlib_good.csv").read_bytes(),
        "pbx-a/pbx-a_000002_20090114.csv": (SAMPLES / "asterisk_cdr_csv_testsuite_cdrlib_buggy.csv").read_bytes(),
        "pbx-a/pbx-a_000003_20090115.csv.gz": gzip.compress(
            (SAMPLES / "asterisk_cdr_csv_testsuite_Master.csv").read_bytes(), mtime=0),
        "pbx-a/pbx-a_000004_20090115.csv": (SAMPLES / "asterisk_cel_csv_testsuite_CELMaster1.csv").read_bytes(),
        "fs-b/fs-b_000001_20991231.json": (SAMPLES / "freeswitch_json_cdr__cgrates_engine_fscdr_test.json").read_bytes(),
    }
    for key, body in files.items():
        landing.write_bytes(key, body)
    result = mediate(local_settings)
    assert result.balanced and result.files.height == len(files)
    formats = dict(result.files.select("source_file", "format").iter_rows())
    assert formats["pbx-a/pbx-a_000001_20090114.csv"] == "asterisk_csv"
    assert formats["pbx-a/pbx-a_000003_20090115.csv.gz"] == "asterisk_csv"
    assert formats["fs-b/fs-b_000001_20991231.json"] == "freeswitch_json"
    read = result.files.filter(pl.col("status") != "quarantined")
    assert read["records_in"].sum() > 0
    assert read["usage"].sum() == 0, "no sample number belongs to a Telbill subscriber (no customers imported)"
    lake = open_store(local_settings.lake_uri)
    rejects = read_published(lake, "mediation/rejects")
    assert rejects is not None and rejects["reason_code"].is_not_null().all()
    assert (rejects["raw"].str.len_chars() > 0).all()
