"""Real-time prepaid charging sidecar: a 3GPP TS 32.291 Nchf_ConvergedCharging CHF over SQLite balances.

Modules: :mod:`charging.store` (durable ledger, buckets, reservations), :mod:`charging.pricing` (the
batch catalogue behind a small interface), :mod:`charging.engine` (create/update/release),
:mod:`charging.api` (HTTP: Nchf + TMF654-shaped balance API), :mod:`charging.records` (charging
records to the landing area), :mod:`charging.cli` (``telbill charging ...``). See docs/charging.md.
"""
