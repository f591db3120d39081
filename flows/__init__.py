"""Prefect flows: thin orchestration over corpuspipe.steps."""
