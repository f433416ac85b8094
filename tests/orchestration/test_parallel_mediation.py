"""Scale-out proof: staging files concurrently in separate processes, in any order and batching, then
publishing once, gives exactly the outputs of one sequential ``mediate`` run."""

from __future__ import annotations

import multiprocessing
import shutil
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import polars as pl
import pytest

from pipelines.common.partitions import published_manifests, read_published
from pipelines.common.settings import Settings
from pipelines.common.storage import open_store
from pipelines.customers import import_customers
from pipelines.generate import generate
from pipelines.mediation.distributed import pending_keys, publish_staged, stage_files
from pipelines.mediation.pipeline import mediate

DATASETS = ("usage", "mediation/suspense", "mediation/duplicates", "mediation/rejects", "mediation/filtered",
            "mediation/quarantine", "file_manifest")


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    out = tmp_path_factory.mktemp("gen")
    return generate(out, subscribers=40, period="2026-10", seed=11, faults=True)


def _settings(root: Path, generated) -> Settings:
    landing = root / "landing"
    shutil.copytree(generated.landing_dir, landing)
    settings = Settings(landing_uri=str(landing), lake_uri=str(root / "lake"), output_dir=str(root / "out"),
                        warehouse_path=str(root / "wh.duckdb"))
    import_customers(settings, generated.accounts_csv.read_bytes(), generated.subscriptions_csv.read_bytes())
    return settings


def _snapshot(settings: Settings) -> dict[str, pl.DataFrame]:
    lake = open_store(settings.lake_uri)
    out = {}
    for dataset in DATASETS:
        frame = read_published(lake, dataset)
        out[dataset] = frame.sort(frame.columns) if frame is not None else None
    out["_runs"] = pl.DataFrame({"prefix": [m.prefix for d in DATASETS for m in published_manifests(lake, d)]})
    return out


def _stage(args: tuple[Settings, list[str]]) -> list[str]:
    settings, keys = args
    return stage_files(settings, keys)


def test_concurrent_staging_equals_sequential_mediation(tmp_path, generated):
    sequential = _settings(tmp_path / "seq", generated)
    result = mediate(sequential)
    assert result.balanced and result.files.height == len(generated.files)

    parallel = _settings(tmp_path / "par", generated)
    keys = pending_keys(parallel)
    assert keys == sorted(generated.files)
    batches = [keys[i::3] for i in range(3)][::-1]  # interleaved batches, submitted in reverse
    # spawn, not fork: each worker is a fresh process, as an Airflow worker would be (and Polars' thread
    # pool does not survive fork)
    with ProcessPoolExecutor(max_workers=2, mp_context=multiprocessing.get_context("spawn")) as pool:
        staged = list(pool.map(_stage, [(parallel, b) for b in batches]))
    assert sum(len(s) for s in staged) == len(keys)
    published = publish_staged(parallel, batch_records=500)  # many small flushes: dates are folded repeatedly
    assert published.balanced
    assert pending_keys(parallel) == []

    seq, par = _snapshot(sequential), _snapshot(parallel)
    for name in (*DATASETS, "_runs"):
        if seq[name] is None:
            assert par[name] is None, name
        else:
            assert par[name] is not None and seq[name].equals(par[name]), f"{name} differs"
    assert seq["usage"].height > 0
    # nothing staged is left behind once published
    assert open_store(parallel.lake_uri).list("mediation/staged/") == []
