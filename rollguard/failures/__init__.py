"""Batch jobs around the failures database: aggregation of unmatched errors, retention, synthetic data."""
