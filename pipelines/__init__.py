"""Pathlink pipelines."""
