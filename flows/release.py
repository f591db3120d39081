"""Where ``prefect.yaml``'s deployments find the flow (``entrypoint: flows/release.py:build_release``).

The flow itself lives in the package, :mod:`corpuspipe.orchestrate.flow`; this file only names it
at the path Prefect's deployment tooling reads from the repository root.
"""

from corpuspipe.orchestrate.flow import build_release

__all__ = ["build_release"]
