"""Pathlink keys."""
