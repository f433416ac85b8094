"""Run settings: where the landing area, lake and warehouse live, and how to reach S3.

Stages never read the environment themselves; the CLI (or a DAG task) builds a :class:`Settings`
once with :meth:`Settings.from_env` and passes it down.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path


@dataclass(frozen=True)
class S3Settings:
    """How to reach an S3-compatible store; empty values fall back to boto3's own resolution."""

    endpoint_url: str | None = None
    region: str = "us-east-1"
    access_key_id: str | None = None
    secret_access_key: str | None = None


@dataclass(frozen=True)
class Settings:
    """Locations of every store a stage touches. URIs are local folders or ``s3://bucket/prefix``."""

    landing_uri: str = "var/landing"
    lake_uri: str = "var/lake"
    warehouse_path: str = "var/warehouse.duckdb"
    tariffs_dir: str = "tariffs"
    output_dir: str = "var/out"
    s3: S3Settings = field(default_factory=S3Settings)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, root: str | Path | None = None) -> Settings:
        """Settings from ``TELBILL_*`` and ``AWS_*`` variables; defaults are the embedded local folders."""
        env = os.environ if env is None else env
        base = Path(root) if root is not None else Path(env.get("TELBILL_HOME", "."))

        def local(name: str, default: str) -> str:
            value = env.get(name, default)
            return value if value.startswith("s3://") or Path(value).is_absolute() else str(base / value)

        return cls(
            landing_uri=local("TELBILL_LANDING_URI", cls.landing_uri),
            lake_uri=local("TELBILL_LAKE_URI", cls.lake_uri),
            warehouse_path=local("TELBILL_WAREHOUSE", cls.warehouse_path),
            tariffs_dir=local("TELBILL_TARIFFS_DIR", cls.tariffs_dir),
            output_dir=local("TELBILL_OUTPUT_DIR", cls.output_dir),
            s3=S3Settings(
                endpoint_url=env.get("TELBILL_S3_ENDPOINT_URL") or env.get("AWS_ENDPOINT_URL") or None,
                region=env.get("AWS_DEFAULT_REGION", "us-east-1"),
                access_key_id=env.get("AWS_ACCESS_KEY_ID") or None,
                secret_access_key=env.get("AWS_SECRET_ACCESS_KEY") or None,
            ),
        )

    def with_(self, **changes: object) -> Settings:
        """A copy with some fields changed (e.g. an audit namespace for the lake)."""
        return replace(self, **changes)  # type: ignore[arg-type]
