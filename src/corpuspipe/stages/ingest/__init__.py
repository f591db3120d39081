"""Ingestion: the :class:`Ingest` source stage (``stage.py``) and its knowledge -- finding the raw
files (``discover.py``), decoding them (``decode.py``), reading one file into essays (``files.py``),
repairing crawl text (``crawltext.py``), splitting a file into essays (``split.py``, over
``lines.py``, ``titles.py``: what a line is, ``starts.py``: where essays start, ``headerzone.py``:
an essay's header lines), repairing mojibake (``mojibake.py``)."""

from corpuspipe.stages.ingest.stage import Ingest

__all__ = ["Ingest"]
