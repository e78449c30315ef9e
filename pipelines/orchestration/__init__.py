"""Orchestration: Prefect flows and thin tasks, task runners, deployments."""
