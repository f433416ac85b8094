"""Shared building blocks: money, storage, partitions and settings."""
