"""Prefect orchestration, the only package that imports Prefect: the release flow (release.py),
the scheduled deployment (serve.py) and the CLI's early-started embedded server (server.py)."""
