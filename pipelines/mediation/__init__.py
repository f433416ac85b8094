"""Mediation: landed CDR files become one clean, deduplicated, guided usage table."""
