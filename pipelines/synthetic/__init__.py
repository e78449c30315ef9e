"""Seeded synthetic partner drops and their truth (demo, tests and benchmarks only)."""
