"""Bill cycles and invoices: recurring, usage, discounts, taxes and adjustments into invoices."""

from pipelines.billing.cycle import BillCycleResult, bill_cycle

__all__ = ["BillCycleResult", "bill_cycle"]
