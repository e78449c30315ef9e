"""Intake: landing paths, reading partner files, contract validation, encoded drops."""
