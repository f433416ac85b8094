"""Order independence, idempotency and conservation as properties (hypothesis) and on generated files."""

from __future__ import annotations

import tempfile
from pathlib import Path

import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipelines.common.partitions import published_manifests
from pipelines.common.settings import Settings
from pipelines.common.storage import Store, open_store
from pipelines.customers import import_customers
from pipelines.generate import upload_landing
from pipelines.mediation.pipeline import mediate
from schemas.contracts import CANONICAL_COLUMNS

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DATASETS = ("usage", "mediation/suspense", "mediation/duplicates", "mediation/rejects", "mediation/filtered",
            "mediation/quarantine", "mediation/file_counts", "file_manifest")


def _settings(root: Path) -> Settings:
    return Settings(landing_uri=str(root / "landing"), lake_uri=str(root / "lake"),
                    tariffs_dir=str(PROJECT_ROOT / "tariffs"))


def published_bytes(lake: Store) -> dict[str, bytes]:
    """Every published data file's bytes, by partition: what readers see, byte for byte."""
    out = {}
    for dataset in DATASETS:
        for m in published_manifests(lake, dataset):
            for i, f in enumerate(m.files):
                out[f"{dataset}/{m.partition}/{i}"] = lake.read_bytes(f["key"])
    return out


def test_same_files_in_any_order_or_batches_publish_identical_bytes(generated, tmp_path: Path) -> None:
    picked = [k for k in generated.files if k.startswith(("smsc/", "msc-west/")) or k.endswith(
        ("_000003_20261002.csv", "_000020_20261019.parquet", "_000021_20261020.parquet"))]
    runs = {}
    for name, plan in {
        "all_at_once": [picked],
        "one_by_one_reversed": [[k] for k in reversed(picked)],
        "interleaved_batches": [picked[1::2], picked[0::2]],
        "small_batches": [picked],  # flushes on the way that keep the newest dates open
    }.items():
        settings = _settings(tmp_path / name)
        upload_landing(generated, settings)
        import_customers(settings, generated.accounts_csv.read_bytes(), generated.subscriptions_csv.read_bytes())
        for keys in plan:
            mediate(settings, keys=keys, batch_records={"interleaved_batches": 1, "small_batches": 150}.get(name, 2_000_000))
        runs[name] = published_bytes(open_store(settings.lake_uri))
    assert runs["all_at_once"], "nothing was published"
    assert runs["one_by_one_reversed"] == runs["all_at_once"]
    assert runs["interleaved_batches"] == runs["all_at_once"]
    assert runs["small_batches"] == runs["all_at_once"]


# --- property tests on tiny synthetic files --------------------------------------------------------
ACCOUNTS = (
    b"account_id,name,currency,timezone,bill_cycle_day,tax_jurisdiction,payment_terms_days,address_line1,city,"
    b"postcode,country,email,phone,parent_account_id,segment,billing_entity\n"
    b"A1,Anna,EUR,Europe/Berlin,1,DE-BE,14,Str 1,Berlin,10115,DE,a@example.org,,,consumer,TBM-DE\n"
)
SUBSCRIPTIONS = (
    b"subscription_id,account_id,msisdn,imsi,plan_id,payment_type,valid_from,valid_to\n"
    b"S1,A1,491511000001,,P_BASIC,postpaid,2024-01-01T00:00:00Z,\n"
)
POOL = [  # (network_record_id, msisdn, call_outcome, duration, day): valid, unknown, unanswered, bad, data
    ("V1", "491511000001", "answered", "60", "03"), ("V2", "491511000001", "answered", "30", "04"),
    ("V3", "491519999999", "answered", "10", "03"), ("V4", "491511000001", "unanswered", "0", "04"),
    ("V5", "49151BAD", "answered", "5", "03"), ("", "491511000001", "answered", "0", "04"),
]


def _line(i: int) -> str:
    rid, msisdn, outcome, dur, day = POOL[i]
    row = dict.fromkeys(CANONICAL_COLUMNS, "")
    service = "data" if rid == "" else "voice"
    row.update(network_record_id=rid, service=service, direction="MO", msisdn=msisdn,
               start_time=f"2026-10-{day}T10:00:00Z", duration_s=dur if service == "voice" else "",
               quantity=dur if service == "voice" else "4096", call_outcome=outcome if service == "voice" else "",
               other_party="4930123456" if service == "voice" else "", charging_id="9" if service == "data" else "")
    return ",".join(row[c] for c in CANONICAL_COLUMNS)


files_strategy = st.lists(st.lists(st.integers(0, len(POOL) - 1), min_size=0, max_size=6), min_size=1, max_size=4)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(files=files_strategy, order=st.randoms(use_true_random=False))
def test_conservation_idempotency_and_order_as_properties(files: list[list[int]], order) -> None:
    bodies = {f"msc-x/msc-x_{n + 1:06d}_20261005.csv":
              ("\n".join([",".join(CANONICAL_COLUMNS), *(_line(i) for i in lines)]) + "\n").encode()
              for n, lines in enumerate(files)}
    results = []
    for shuffle in (False, True):
        with tempfile.TemporaryDirectory() as tmp:
            settings_ = _settings(Path(tmp))
            landing = open_store(settings_.landing_uri)
            for key, body in bodies.items():
                landing.write_bytes(key, body)
            import_customers(settings_, ACCOUNTS, SUBSCRIPTIONS)
            keys = sorted(bodies)
            if shuffle:
                order.shuffle(keys)
                for key in keys:
                    mediate(settings_, keys=[key])
            else:
                result = mediate(settings_)
                t = result.totals()
                assert result.balanced
                assert t["records_in"] == sum(len(lines) for lines in files)
                # every distinct valid, billable, known record survives exactly once
                distinct = {i for lines in files for i in lines}
                assert t["usage"] == len(distinct & {0, 1, 5})
                assert t["suspense"] == len(distinct & {2})
                assert t["rejected"] == sum(line.count(4) for line in files)
            lake = open_store(settings_.lake_uri)
            snapshot = published_bytes(lake)
            assert mediate(settings_).files.height == 0
            assert published_bytes(lake) == snapshot, "a second run changes nothing"
            results.append(snapshot)
    assert results[0] == results[1]


def test_published_usage_is_sorted_and_readable_as_one_table(generated, tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    upload_landing(generated, settings)
    import_customers(settings, generated.accounts_csv.read_bytes(), generated.subscriptions_csv.read_bytes())
    keys = [k for k in generated.files if k.startswith("smsc/")][:5]
    result = mediate(settings, keys=keys + keys[:2])  # a key given twice is still one file
    assert result.files.height == 5 and result.balanced and result.totals()["duplicate"] == 0
    lake = open_store(settings.lake_uri)
    for m in published_manifests(lake, "usage"):
        part = lake.read_parquet(m.files[0]["key"])
        assert part.equals(part.sort("start_time", "record_id"))
        assert (part["usage_date"].cast(pl.String) == m.partition["usage_date"]).all()
        assert part["record_id"].n_unique() == part.height


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3 * 86_400 - 1), st.booleans(), st.integers(0, 2**64 - 1), st.booleans()),
                min_size=1, max_size=40),
       st.booleans())
def test_usage_order_fast_key_equals_the_plain_four_key_sort(rows, odd_id) -> None:
    """The folded integer sort key gives exactly (usage_date, guided first, start_time, record_id) order,
    ties on the second included; an id that is not 16 hex digits takes the plain sort and agrees too."""
    from datetime import UTC, datetime, timedelta

    from pipelines.mediation.pipeline import by_usage_date, in_usage_order

    base = datetime(2026, 10, 24, 22, tzinfo=UTC)
    frame = pl.DataFrame({
        "start_time": [base + timedelta(seconds=s // 2) for s, *_ in rows],
        "subscription_id": [None if unguided else "S1" for _, unguided, _, _ in rows],
        "record_id": [f"{rid:016x}" for _, _, rid, _ in rows],
    }, schema={"start_time": pl.Datetime("us", "UTC"), "subscription_id": pl.String, "record_id": pl.String})
    if odd_id:  # shapes that parse as hex but do not sort like 16 lowercase digits must take the plain sort
        odd = ["ff", "100", "A000000000000000", "+1", "0"]
        frame = frame.with_columns(pl.Series([odd[i % len(odd)] for i in range(frame.height)]).alias("record_id"))
    frame = frame.with_columns(pl.col("start_time").dt.date().alias("usage_date"))
    expected = frame.sort(pl.col("usage_date"), pl.col("subscription_id").is_null(), "start_time", "record_id")
    assert in_usage_order(frame).equals(expected)
    slices = list(by_usage_date(frame))
    assert pl.concat([part for _, part in slices]).equals(expected)
    assert [day for day, _ in slices] == sorted({d for d in frame["usage_date"]})
    assert all(part["usage_date"].n_unique() == 1 and part["usage_date"][0] == day for day, part in slices)
