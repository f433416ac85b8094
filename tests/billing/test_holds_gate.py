"""Assurance holds gate finalising in bill_cycle itself (not only in Airflow); finance can override, on record."""

from __future__ import annotations

import json
from datetime import date

import pytest
from billing_fixtures import PERIOD

from pipelines.assurance.holds import Hold, clear_hold, place_holds
from pipelines.billing import bill_cycle
from pipelines.billing.cycle import HOLD_OVERRIDES, REGISTER, HoldsBlockFinalising
from pipelines.cli import main
from pipelines.common.partitions import published_manifests, read_published
from pipelines.common.storage import open_store

HOLD = Hold(hold_id="HOLD-0123456789ab", period=PERIOD, source="MSC-BER-01", service="voice",
            reason_code="VOLUME_DROP", message="MSC-BER-01 voice: 4 consecutive hours far below the weekly baseline",
            first_hour="2026-10-14T01:00:00+00:00", last_hour="2026-10-14T04:00:00+00:00", hours=4)


@pytest.fixture
def held_lake(billing_lake):
    place_holds(billing_lake, [HOLD])
    return billing_lake


def lake_of(settings):
    return open_store(settings.lake_uri, settings.s3)


def test_open_hold_refuses_to_finalise_and_writes_nothing(held_lake):
    before = lake_of(held_lake).list()
    with pytest.raises(HoldsBlockFinalising) as err:
        bill_cycle(held_lake, PERIOD, documents=False)
    msg = str(err.value)
    assert err.value.reason_code == "ASSURANCE_HOLD"
    assert HOLD.hold_id in msg and "VOLUME_DROP" in msg and "MSC-BER-01/voice" in msg
    assert f"telbill assurance clear-hold --period {PERIOD} --hold-id {HOLD.hold_id}" in msg
    assert "--override-holds" in msg
    assert lake_of(held_lake).list() == before, "nothing numbered or published"


def test_dry_runs_and_drafts_still_work_while_held(held_lake):
    dry = bill_cycle(held_lake, PERIOD, dry_run=True)
    assert len(dry.invoices) == 7
    drafts = bill_cycle(held_lake, PERIOD, finalise=False, documents=False)
    assert {d.status for d in drafts.invoices} == {"draft"}
    assert read_published(lake_of(held_lake), REGISTER) is None


def test_cleared_hold_lets_the_cycle_finalise(held_lake):
    clear_hold(held_lake, PERIOD, HOLD.hold_id, "ana.analyst", "late file arrived", date(2026, 11, 2))
    result = bill_cycle(held_lake, PERIOD, documents=False)
    assert len(result.finalised) == 7 and result.hold_override is None
    assert read_published(lake_of(held_lake), HOLD_OVERRIDES) is None


def test_override_is_recorded_in_dataset_and_manifest(held_lake):
    result = bill_cycle(held_lake, PERIOD, documents=False, override_holds="CFO approved: gap is a test switch")
    assert len(result.finalised) == 7
    assert "override recorded" in result.message and HOLD.hold_id in result.message
    rows = read_published(lake_of(held_lake), HOLD_OVERRIDES, {"period": PERIOD}).to_dicts()
    assert [(r["hold_id"], r["override_reason"], r["reason_code"]) for r in rows] == [
        (HOLD.hold_id, "CFO approved: gap is a test switch", "VOLUME_DROP")]
    assert rows[0]["bill_cycle_run_id"] == result.run_id
    (manifest,) = published_manifests(lake_of(held_lake), "invoices", {"period": PERIOD})
    assert manifest.extra["hold_override"] == {"reason": "CFO approved: gap is a test switch",
                                               "hold_ids": [HOLD.hold_id], "bill_cycle_run_id": result.run_id}


def test_blank_override_reason_does_not_count(held_lake):
    with pytest.raises(HoldsBlockFinalising):
        bill_cycle(held_lake, PERIOD, documents=False, override_holds="   ")


def _cli(settings, *args: str) -> int:
    return main(["--lake", settings.lake_uri, "--tariffs", settings.tariffs_dir, *args])


def test_cli_refuses_then_overrides(held_lake, capsys):
    code = _cli(held_lake, "bill-cycle", "--period", PERIOD, "--no-documents")
    out = capsys.readouterr().out
    assert code == 2 and "ASSURANCE_HOLD" in out and "clear-hold" in out
    code = _cli(held_lake, "bill-cycle", "--period", PERIOD, "--no-documents", "--override-holds", "month-end deadline")
    out = capsys.readouterr().out
    assert code == 0 and "override recorded" in out
    rows = read_published(lake_of(held_lake), HOLD_OVERRIDES, {"period": PERIOD})
    assert json.loads(rows.write_json())[0]["override_reason"] == "month-end deadline"
