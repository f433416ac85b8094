"""The DuckDB warehouse: views over the lake's published Parquet plus the SQL in ``warehouse/*.sql``.

The warehouse file holds no data of its own, only views, so it can be rebuilt at any time and is
written by one process only (``telbill warehouse build`` or the DAG's last task). Each published
dataset becomes a view of the same name (``usage``, ``rated``, ``invoices`` ...); the SQL files
then define the analyst views on top, in file-name order. A SQL file starts with a line
``-- requires: usage, rated`` naming the views it needs; it is skipped (and reported as skipped)
while any of them is not published yet, e.g. before the first bill cycle.
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


def required_views(sql: str) -> list[str]:
    """Views a warehouse SQL file declares it needs (its ``-- requires:`` line)."""
    for line in sql.splitlines():
        if line.lower().startswith("-- requires:"):
            return [v.strip() for v in line.split(":", 1)[1].split(",") if v.strip()]
    return []


def build_warehouse(settings: Settings, path: str | None = None) -> tuple[str, list[str]]:
    """(Re)create the warehouse file; returns its path and the SQL files skipped for missing inputs."""
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
                f"SELECT * FROM read_parquet([{listing}], union_by_name = true, hive_partitioning = false)"
            )
        skipped = []
        for sql_file in sorted(SQL_DIR.glob("*.sql")):
            sql = sql_file.read_text()
            present = {r[0] for r in con.execute("select view_name from duckdb_views() where not internal").fetchall()}
            missing = [v for v in required_views(sql) if v not in present]
            if missing:
                skipped.append(f"{sql_file.name} (waiting for {', '.join(missing)})")
                continue
            try:
                con.execute(sql)
            except duckdb.Error as exc:
                raise RuntimeError(f"warehouse view file {sql_file.name} failed: {exc}") from exc
    finally:
        con.close()
    tmp.replace(target)
    return str(target), skipped


def _build_command(args: argparse.Namespace, settings: Settings) -> int:
    path, skipped = build_warehouse(settings)
    print(f"warehouse: {path}")
    for item in skipped:
        print(f"  skipped {item}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    wh = sub.add_parser("warehouse", help="the DuckDB warehouse analysts query")
    wsub = wh.add_subparsers(dest="warehouse_command", required=True)
    build = wsub.add_parser("build", help="rebuild views over the published lake")
    build.set_defaults(func=_build_command)
