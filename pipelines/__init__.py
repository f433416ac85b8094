"""telbill pipelines: each stage is a plain function over partitions (see docs/architecture.md)."""
