"""Orchestration: the Prefect flow (``flow``), Prefect's embedded server started early (``server``),
and cron serving (``serve``).  The only package that imports Prefect; importing it starts nothing."""
