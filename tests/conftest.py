"""Shared fixtures: a real S3-compatible server (moto in server mode on 127.0.0.1) and settings."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")

from pipelines.common.settings import S3Settings, Settings  # noqa: E402

PROJECT_ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture(scope="session")
def moto_server() -> Iterator[str]:
    """A real moto S3 server on 127.0.0.1 (random port); yields its endpoint URL."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def s3_settings(moto_server: str) -> S3Settings:
    return S3Settings(endpoint_url=moto_server, region="us-east-1", access_key_id="testing",
                      secret_access_key="testing")


@pytest.fixture
def s3_bucket(s3_settings: S3Settings) -> str:
    """A fresh, empty bucket on the moto server; yields its name."""
    from pipelines.common.storage import s3_client

    name = f"telbill-{uuid.uuid4().hex[:12]}"
    s3_client(s3_settings).create_bucket(Bucket=name)
    return name


@pytest.fixture
def local_settings(tmp_path: Path) -> Settings:
    """Settings with every store in a temporary folder and the project's own catalogue."""
    return Settings(
        landing_uri=str(tmp_path / "landing"),
        lake_uri=str(tmp_path / "lake"),
        warehouse_path=str(tmp_path / "warehouse.duckdb"),
        tariffs_dir=str(PROJECT_ROOT / "tariffs"),
        output_dir=str(tmp_path / "out"),
    )


@pytest.fixture
def s3_store_settings(tmp_path: Path, s3_settings: S3Settings, s3_bucket: str) -> Settings:
    """Settings with landing and lake on the moto S3 server."""
    return Settings(
        landing_uri=f"s3://{s3_bucket}/landing",
        lake_uri=f"s3://{s3_bucket}/lake",
        warehouse_path=str(tmp_path / "warehouse.duckdb"),
        tariffs_dir=str(PROJECT_ROOT / "tariffs"),
        output_dir=str(tmp_path / "out"),
        s3=s3_settings,
    )
