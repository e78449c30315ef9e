"""Pathlink data_contracts."""
