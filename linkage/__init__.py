"""Pathlink linkage."""
