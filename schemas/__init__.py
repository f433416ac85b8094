"""Data contracts between stages: Polars schemas and Pandera models (see docs/schemas.md)."""
