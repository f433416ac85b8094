"""Check that two lakes published the same mediation results, down to the Parquet bytes.

Used by ``deploy/celery/try_local.sh`` to compare the lake the Celery workers wrote with the lake of a
sequential ``telbill mediate`` run on a copy of the same landing files. S3 settings come from the
``TELBILL_*``/``AWS_*`` environment, like every other telbill entry point.

    python deploy/celery/compare_lakes.py s3://bucket/celery/lake s3://bucket/seq/lake
"""

from __future__ import annotations

import hashlib
import sys

from polars.testing import assert_frame_equal

from pipelines.common.partitions import Manifest, published_manifests, read_published
from pipelines.common.settings import Settings
from pipelines.common.storage import Store, open_store

DATASETS = ("usage", "file_manifest")


def same_rows(a: Store, b: Store, dataset: str) -> int:
    """Assert both lakes publish the same rows for ``dataset`` (order-free) and return the row count."""
    left, right = read_published(a, dataset), read_published(b, dataset)
    if left is None or right is None:
        raise SystemExit(f"{dataset}: nothing published in {'the first' if left is None else 'the second'} lake")
    assert_frame_equal(left.sort(left.columns), right.sort(right.columns))
    return left.height


def partition_fingerprint(store: Store, manifests: list[Manifest]) -> list[tuple]:
    """Partition, run id, rows and sha256 of every data file: equal fingerprints mean equal bytes."""
    return sorted(
        (sorted(m.partition.items()), m.run_id, m.rows,
         sorted((f["key"], f["rows"], hashlib.sha256(store.read_bytes(f["key"])).hexdigest()) for f in m.files))
        for m in manifests)


def main(first: str, second: str) -> int:
    s3 = Settings.from_env().s3
    a, b = open_store(first, s3), open_store(second, s3)
    for dataset in DATASETS:
        print(f"{dataset}: {same_rows(a, b, dataset)} rows, identical")
    ua, ub = published_manifests(a, "usage"), published_manifests(b, "usage")
    if partition_fingerprint(a, ua) != partition_fingerprint(b, ub):
        raise SystemExit("usage: partitions differ in run id, row count or Parquet bytes")
    print(f"usage: {len(ua)} published partitions with identical run ids, row counts and Parquet bytes")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    sys.exit(main(sys.argv[1], sys.argv[2]))
