"""The DuckDB warehouse: views over the lake's published Parquet plus the SQL in ``warehouse/*.sql``.

The warehouse file holds no data of its own, only views, so it can be rebuilt at any time and is
written by one process only (``telbill warehouse build`` or the DAG's last task). Each published
dataset becomes a view of the same name (``usage``, ``rated``, ``invoices`` ...); the SQL files
then define the analyst views on top, in file-name order.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import duckdb

from pipelines.common.partitions import published_manifests
from pipelines.common.settings import Settings
from pipelines.common.storage import Store, configure_duckdb, open_store

SQL_DIR = Path(__file__).resolve().parents[1] / "warehouse"


def lake_datasets(lake: Store) -> list[str]:
    """Datasets that have at least one published partition (top-level or nested, e.g. customers/accounts)."""
    names = set()
    for key in lake.list():
        if key.endswith("/_published.json"):
            parts = key.split("/")
            names.add("/".join(p for p in parts[:-1] if "=" not in p))
    return sorted(names)


def view_name(dataset: str) -> str:
    return dataset.replace("/", "_").replace("-", "_")


def build_warehouse(settings: Settings, path: str | None = None) -> str:
    """(Re)create the warehouse file with a view per published dataset and the analyst SQL views."""
    lake = open_store(settings.lake_uri, settings.s3)
    target = Path(path or settings.warehouse_path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".tmp.duckdb")
    tmp.unlink(missing_ok=True)
    con = duckdb.connect(str(tmp))
    try:
        if lake.is_s3:
            configure_duckdb(con, settings.s3)
        for dataset in lake_datasets(lake):
            files = [lake.duckdb_glob(f["key"]) for m in published_manifests(lake, dataset) for f in m.files]
            if not files:
                continue
            listing = ", ".join(f"'{f}'" for f in files)
            con.execute(
                f"CREATE OR REPLACE VIEW {view_name(dataset)} AS "
                f"SELECT * FROM read_parquet([{listing}], union_by_name = true)"
            )
        for sql_file in sorted(SQL_DIR.glob("*.sql")):
            try:
                con.execute(sql_file.read_text())
            except duckdb.Error as exc:
                raise RuntimeError(f"warehouse view file {sql_file.name} failed: {exc}") from exc
    finally:
        con.close()
    tmp.replace(target)
    return str(target)


def register(sub: argparse._SubParsersAction) -> None:
    wh = sub.add_parser("warehouse", help="the DuckDB warehouse analysts query")
    wsub = wh.add_subparsers(dest="warehouse_command", required=True)
    build = wsub.add_parser("build", help="rebuild views over the published lake")
    build.set_defaults(func=lambda args, settings: print(build_warehouse(settings)) or 0)
