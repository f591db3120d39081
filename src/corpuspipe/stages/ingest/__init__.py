"""Ingestion: the :class:`Ingest` source stage (``stage.py``) and its knowledge -- discovering and
decoding files (``files.py``), splitting them into essays (``split.py``), repairing mojibake
(``mojibake.py``)."""

from corpuspipe.stages.ingest.stage import Ingest

__all__ = ["Ingest"]
