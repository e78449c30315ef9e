"""Pathlink schemas."""
