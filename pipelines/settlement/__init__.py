"""Partner settlement: statements per partner and period, and partner reconciliation."""
