"""Revenue assurance: controls over the warehouse, KPIs, anomaly detection, holds, data quality, report."""
