"""Destination and interconnect prefixes that change validity inside a bill period.

The engine folds each record's prefix-table epoch into its number key and finds destination and interconnect
range with one ASOF join (``engine._NUMBER_RANGES_SQL``); these cases prove a record matches the prefixes valid at
its own start, on both sides of every change, and that the Python pricer (its own longest-prefix lookup) agrees.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from pipelines.rating.catalogue import Catalogue, load_catalogue
from pipelines.rating.quote import quote
from pipelines.rating.stage import rate_frames
from rating.helpers import PERIOD, TARIFFS, usage_frame, usage_row


@pytest.fixture(scope="module")
def changing_catalogue(tmp_path_factory: pytest.TempPathFactory) -> Catalogue:
    draft = Path(tmp_path_factory.mktemp("tariffs")) / "tariffs"
    shutil.copytree(TARIFFS, draft)
    dest = draft / "destinations.csv"
    text = dest.read_text()
    # Hamburg fixed ends on 2026-10-20 (its numbers fall back to '49'); a longer Berlin prefix starts on 10-15
    text = text.replace("4940,DE_FIX_HAMBURG,fixed,Hamburg fixed,2024-01-01,",
                        "4940,DE_FIX_HAMBURG,fixed,Hamburg fixed,2024-01-01,2026-10-20")
    dest.write_text(text + "4930999,DE_FIX_BERLIN_999,fixed,Berlin 999 block,2026-10-15,\n")
    ic = draft / "interconnect.csv"
    text = ic.read_text().replace("4930,IC_DTAG,0.0010,60,60,EUR,2024-01-01,",
                                  "4930,IC_DTAG,0.0010,60,60,EUR,2024-01-01,2026-10-10")
    ic.write_text(text + "4930,IC_BERLIN_NET,0.0020,60,60,EUR,2026-10-10,\n")
    return load_catalogue(draft)


CALLS = {  # record id: (UTC start, number, destination id, interconnect carrier)
    "ber_early": ("2026-10-05 10:00:00", "4930999123", "DE_FIX_BERLIN", "IC_DTAG"),
    "ber_mid": ("2026-10-12 10:00:00", "4930999123", "DE_FIX_BERLIN", "IC_BERLIN_NET"),
    "ber_late": ("2026-10-16 10:00:00", "4930999123", "DE_FIX_BERLIN_999", "IC_BERLIN_NET"),
    "ber_other_late": ("2026-10-16 10:00:00", "4930123456", "DE_FIX_BERLIN", "IC_BERLIN_NET"),
    "ham_early": ("2026-10-05 10:00:00", "4940123456", "DE_FIX_HAMBURG", "IC_DTAG"),
    "ham_late": ("2026-10-25 10:00:00", "4940123456", "DE_OTHER", "IC_DTAG"),
    "ham_edge": ("2026-10-19 21:59:59", "4940123456", "DE_FIX_HAMBURG", "IC_DTAG"),  # 23:59:59 Berlin
    "ham_after_edge": ("2026-10-19 22:00:00", "4940123456", "DE_OTHER", "IC_DTAG"),
}


def test_each_record_matches_the_prefixes_valid_at_its_start(changing_catalogue, accounts) -> None:
    rows = [usage_row(rid, start, 90, other_party=number) for rid, (start, number, _, _) in CALLS.items()]
    n_in, out = rate_frames(changing_catalogue, usage_frame(rows), accounts, PERIOD, apply_allowances=False)
    assert n_in == len(rows) == out.rated.height
    rated = {r["record_id"]: r for r in out.rated.iter_rows(named=True)}
    carriers = {r["record_id"]: r["partner_id"] for r in out.settlement.iter_rows(named=True)
                if r["partner_type"] == "interconnect"}
    assert {rid: rated[rid]["destination_id"] for rid in CALLS} == {rid: c[2] for rid, c in CALLS.items()}
    assert carriers == {rid: c[3] for rid, c in CALLS.items()}
    for row in rows:
        q = quote(changing_catalogue, row["plan_id"], "voice", row["start_time"], 90, row["other_party"],
                  account_id=row["account_id"])
        assert (q.destination_id, q.charge) == (rated[row["record_id"]]["destination_id"],
                                                rated[row["record_id"]]["charge"])
