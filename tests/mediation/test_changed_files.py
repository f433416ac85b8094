"""A processed landing key is immutable: a landed file whose content changed after it was mediated is found
(size from the listing every run, sha256 with ``--verify``), never mediated again, and reported loudly by
``mediate`` and ``mediation report``; ``generate`` refuses to overwrite a landed file with other content."""

from __future__ import annotations

import hashlib
from datetime import date
from pathlib import Path

import pytest

from pipelines.cli import main
from pipelines.common.partitions import read_published
from pipelines.common.storage import open_store
from pipelines.mediation.control import file_control_report
from pipelines.mediation.pipeline import CHANGED, load_file_manifest, mediate

PROJECT_ROOT = Path(__file__).resolve().parents[2]
CALL = {"service": "voice", "direction": "MO", "msisdn": "491511234567", "imsi": "262011234567890",
        "other_party": "4930123456", "duration_s": 60, "quantity": 60, "call_outcome": "answered"}
KEYS = [f"msc-east/msc-east_00000{n}_20261003.csv" for n in (1, 2, 3)]
CHANGED_KEY = KEYS[1]


def calls(file_no: int, count: int) -> list[dict]:
    return [{**CALL, "network_record_id": f"F{file_no}-{i}", "start_time": f"2026-10-03T0{i}:15:00Z"}
            for i in range(count)]


@pytest.fixture
def lake_with_three_files(tmp_path: Path, make_csv, capsys: pytest.CaptureFixture[str]) -> list[str]:
    """Three canonical files landed and mediated through the CLI; yields the global options."""
    landing = tmp_path / "landing"
    for n, key in enumerate(KEYS, start=1):
        (landing / key).parent.mkdir(parents=True, exist_ok=True)
        (landing / key).write_bytes(make_csv(calls(n, 2)))
    opts = ["--landing", str(landing), "--lake", str(tmp_path / "lake"), "--tariffs", str(PROJECT_ROOT / "tariffs")]
    assert main([*opts, "mediate"]) == 0
    assert capsys.readouterr().out.startswith("mediated 3 new files (0 already processed)")
    return opts


def _lake_files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_a_changed_file_is_listed_not_mediated_and_stays_listed_until_resolved(
        lake_with_three_files: list[str], tmp_path: Path, make_csv, capsys: pytest.CaptureFixture[str]) -> None:
    opts, landing = lake_with_three_files, tmp_path / "landing"
    original = (landing / CHANGED_KEY).read_bytes()
    manifest_before = load_file_manifest(_settings(opts))
    replaced = make_csv(calls(2, 3))  # the switch re-wrote file 2 with one more call
    (landing / CHANGED_KEY).write_bytes(replaced)
    new_key = "msc-east/msc-east_000004_20261003.csv"
    (landing / new_key).write_bytes(make_csv(calls(4, 1)))

    assert main([*opts, "mediate"]) == 0, "the run's own work is complete: exit 0 unless --strict"
    captured = capsys.readouterr()
    assert captured.out.splitlines()[0] == ("mediated 1 new files (2 already processed, 1 changed after processing: "
                                            "NOT mediated), 1 usage dates rebuilt")
    assert (f"  changed after processing: {CHANGED_KEY} (size {len(original)} -> {len(replaced)} bytes)"
            in captured.out.splitlines())
    assert captured.err.startswith("warning: 1 processed landed files changed afterwards and were NOT mediated; "
                                   "a processed key is immutable: land the corrected file under a new name")

    manifest = load_file_manifest(_settings(opts))
    assert set(manifest["source_file"]) == {*KEYS, new_key}
    row = manifest.filter(manifest["source_file"] == CHANGED_KEY).row(0, named=True)
    assert row == manifest_before.filter(manifest_before["source_file"] == CHANGED_KEY).row(0, named=True), \
        "the manifest still describes the bytes that were mediated"
    assert row["file_sha256"] == hashlib.sha256(original).hexdigest()
    assert int(manifest["records_in"].sum()) == 7, "3 files x 2 calls + 1 new call: the changed file's third is not in"

    report = file_control_report(_settings(opts), date(2026, 11, 1)).text().splitlines()
    at = report.index("files changed after processing: 1 (NOT mediated: a processed key is immutable; land the "
                      "corrected file under a new name, e.g. the next sequence number)")
    assert report[at + 1] == f"  {CHANGED_KEY}: size {len(original)} -> {len(replaced)} bytes"
    assert main([*opts, "mediation", "report", "--as-of", "2026-11-01"]) == 0
    assert f"  {CHANGED_KEY}: size {len(original)} -> {len(replaced)} bytes" in capsys.readouterr().out

    before = _lake_files(tmp_path / "lake")
    assert main([*opts, "mediate", "--strict"]) == 3
    assert "1 changed after processing: NOT mediated" in capsys.readouterr().out
    assert _lake_files(tmp_path / "lake") == before, "finding the same change again writes nothing"

    (landing / CHANGED_KEY).write_bytes(original)  # the operator puts the processed file back
    assert main([*opts, "mediate", "--strict"]) == 0
    captured = capsys.readouterr()
    assert "changed after processing" not in captured.out and captured.err == ""
    assert "files changed after processing: 0" in file_control_report(
        _settings(opts), date(2026, 11, 1)).text().splitlines()


def test_a_same_size_change_is_found_by_verify_and_then_rechecked_every_run(
        lake_with_three_files: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    opts, landing = lake_with_three_files, tmp_path / "landing"
    original = (landing / CHANGED_KEY).read_bytes()
    edited = original.replace(b"4930123456", b"4930123457", 1)
    assert len(edited) == len(original) and edited != original
    (landing / CHANGED_KEY).write_bytes(edited)

    result = mediate(_settings(opts))
    assert result.changed_files.height == 0 and result.skipped_files == 3, \
        "without --verify only the listed size is compared (no landed file is read): documented limitation"

    assert main([*opts, "mediate", "--verify"]) == 0
    old_sha, new_sha = hashlib.sha256(original).hexdigest(), hashlib.sha256(edited).hexdigest()
    line = (f"  changed after processing: {CHANGED_KEY} (same size {len(edited)} bytes, sha256 {old_sha[:12]}... -> "
            f"{new_sha[:12]}...)")
    assert line in capsys.readouterr().out.splitlines()

    again = mediate(_settings(opts))  # no --verify: a key found before is re-hashed until it matches again
    assert again.changed_files.select("source_file", "detected_by", "processed_sha256", "landed_sha256").rows() == [
        (CHANGED_KEY, "sha256", old_sha, new_sha)]
    assert again.files.height == 0 and again.skipped_files == 2


def test_a_changed_file_on_s3_is_found_from_the_listing(s3_store_settings, make_csv) -> None:
    landing = open_store(s3_store_settings.landing_uri, s3_store_settings.s3)
    landing.write_bytes(CHANGED_KEY, make_csv(calls(2, 2)))
    assert mediate(s3_store_settings).files.height == 1
    landing.write_bytes(CHANGED_KEY, make_csv(calls(2, 3)))
    result = mediate(s3_store_settings)
    assert result.changed_files["source_file"].to_list() == [CHANGED_KEY]
    assert result.changed_files["detected_by"].to_list() == ["size"]
    lake = open_store(s3_store_settings.lake_uri, s3_store_settings.s3)
    assert any(k.startswith(f"{CHANGED}/") for k in lake.list()), "published for mediation report"
    assert file_control_report(s3_store_settings, date(2026, 11, 1)).changed.height == 1


def test_generate_refuses_to_overwrite_landed_files_with_other_content(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    landing = tmp_path / "landing"
    opts = ["--landing", str(landing), "--lake", str(tmp_path / "lake"), "--tariffs", str(PROJECT_ROOT / "tariffs")]

    def generate(seed: int, out: str, *extra: str) -> int:
        return main([*opts, "generate", "--subscribers", "10", "--records-per-subscriber", "3", "--seed", str(seed),
                     "--out", str(tmp_path / out), *extra])

    assert generate(1, "gen1") == 0
    first = _lake_files(landing)
    capsys.readouterr()
    assert generate(1, "gen1-again") == 0, "the same files again (same content) are fine"
    assert _lake_files(landing) == first
    capsys.readouterr()

    assert generate(2, "gen2") == 2
    err = capsys.readouterr().err
    gen2 = tmp_path / "gen2" / "landing"
    clash = sorted(k for k, data in first.items() if (gen2 / k).is_file() and (gen2 / k).read_bytes() != data)
    assert clash, "seed 2 writes other content under some of seed 1's names"
    assert err.startswith(f"telbill generate: error: refusing to overwrite {len(clash)} landed files that have other "
                          f"content under the same name in {landing}")
    assert all(key in err for key in clash) and err.count("\n") == 1
    assert _lake_files(landing) == first, "nothing was copied"

    assert generate(2, "gen2", "--force") == 0
    assert f"warning: --force overwrote {len(clash)} landed files" in capsys.readouterr().err
    assert all((landing / k).read_bytes() == (gen2 / k).read_bytes() for k in clash)


def _settings(opts: list[str]):  # noqa: ANN202
    from pipelines.common.settings import Settings

    return Settings(landing_uri=opts[1], lake_uri=opts[3], tariffs_dir=opts[5])


def test_the_airflow_path_lists_changed_files_too(lake_with_three_files: list[str], tmp_path: Path, make_csv) -> None:
    # the mediation DAG stages pending files on workers and publishes once (distributed.publish_staged): a
    # processed key that changed is listed and published there as well, and never staged again
    from pipelines.mediation.distributed import pending_keys, publish_staged, stage_files

    settings, landing = _settings(lake_with_three_files), tmp_path / "landing"
    (landing / CHANGED_KEY).write_bytes(make_csv(calls(2, 3)))
    new_key = "msc-east/msc-east_000004_20261003.csv"
    (landing / new_key).write_bytes(make_csv(calls(4, 1)))
    assert pending_keys(settings) == [new_key]
    stage_files(settings, pending_keys(settings))
    result = publish_staged(settings)
    assert result.files["source_file"].to_list() == [new_key] and result.balanced
    assert result.changed_files["source_file"].to_list() == [CHANGED_KEY]
    assert read_published(open_store(settings.lake_uri), CHANGED)["source_file"].to_list() == [CHANGED_KEY]
    assert CHANGED_KEY not in pending_keys(settings)
