r"""The one stage interface: every step of the pipeline is a small unit of a declared kind.

Three kinds, after datatrove's ``PipelineStep`` and data-juicer's operator kinds, cut to what a
release needs:

* :class:`SourceStage` turns a list of raw files into batches, group by group (ingestion).
* :class:`ShardStage` takes a batch (a :class:`~corpuspipe.core.records.Shard`) and returns it (watermarks, normalization, sectioning).
  It may only look at its own batch and at corpus-level *facts* decided earlier.
* :class:`CorpusStage` needs the whole corpus for one decision (boilerplate selection,
  near-duplicate clustering).  It is split in three: ``collect`` runs per shard and returns a small
  partial result (or writes one to ``ctx.work``); ``reduce`` runs once over all partials and
  returns the *fact* that later stages and the writer read from ``ctx.facts[stage.name]``;
  ``apply`` (when the stage declares ``applies = True``) runs per batch at the start of the next
  pass and uses the fact (remove the selected boilerplate, drop identical files).

**A reduce is parallel to the last step.**  ``reduce`` is the glue of a corpus decision, not its
work: it may ``yield`` :class:`Tasks` -- a module-level function and one argument tuple per task,
e.g. one per band partition -- and receives their results, in order, as the value of the
``yield``; whatever it finally returns is the fact.  The engine runs every yielded step on its
runner (worker processes, Prefect tasks, a Dask cluster) and drives the glue itself
(:func:`drive`), so no step of a decision runs the whole corpus in one process unless the stage
says so.  A reduce small enough to need no task simply returns the fact.

**A stage reports as data.**  Its counters (``ctx.count``) are summed over every shard and reduce;
:meth:`Stage.report` turns them and its fact into what the manifest shows (its entry's ``counts``,
top-level entries it owns such as ``dedup``), :meth:`CorpusStage.quarantine` names the inputs its
decision rejects, :meth:`CorpusStage.release_inputs` the columns and rows it adds to the tables.
The release layer loops over the stage list and knows no stage by name
(``release/stage_report.py``).

Stages never import Prefect and never know how they are scheduled: the engine
(:mod:`corpuspipe.pipeline`) fuses consecutive shard stages into one task per shard and puts a
corpus stage's ``collect`` at the end of the preceding fused pass.  A stage declares which part of
the configuration it reads (``config_slice``) and any files it depends on (``input_files``, e.g. a
user rules file); both go into the cache key of every pass that runs it, by content.
"""

from __future__ import annotations

import hashlib
import json
import inspect
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar, Generator, Iterator, Mapping, Sequence, Union

from corpuspipe.core.config import PipelineConfigBase
from corpuspipe.core.records import QuarantineEntry, Shard


@dataclass
class StageTiming:
    seconds: float = 0.0
    bytes: int = 0  # UTF-8 bytes of the stage's input text (raw bytes for the source stage)

    def add(self, seconds: float, nbytes: int) -> None:
        self.seconds += seconds
        self.bytes += nbytes


class Context:
    """What a stage sees besides its batch: the config, earlier corpus facts, a work folder, counters.

    Counters are plain ``{name: int}`` per stage; the engine sums them over shards and puts them in
    the manifest, so nothing a stage counts is write-only.
    """

    def __init__(self, cfg: PipelineConfigBase, facts: dict[str, Any] | None = None, work: Path | None = None,
                 shard_key: str = ""):
        self.cfg = cfg
        self.facts = facts or {}
        self.work = Path(work) if work is not None else None
        self.shard_key = shard_key
        self.counts: dict[str, dict[str, int]] = {}
        self.timings: dict[str, StageTiming] = {}

    def count(self, stage: str, key: str, n: int = 1) -> None:
        c = self.counts.setdefault(stage, {})
        c[key] = c.get(key, 0) + int(n)

    def count_all(self, stage: str, counts: dict[str, int]) -> None:
        for k, v in counts.items():
            self.count(stage, k, v)

    def timed(self, stage: str, seconds: float, nbytes: int) -> None:
        self.timings.setdefault(stage, StageTiming()).add(seconds, nbytes)


@dataclass(frozen=True)
class StageReport:
    """A stage's part of the release manifest (:meth:`Stage.report`).

    ``counts``: the ``counts`` of the stage's entry under the manifest's ``stages`` (left out when
    empty), e.g. the section stage folds its ``per_level.<n>`` counters into one ``per_level``
    mapping.  ``entries``: top-level manifest keys the stage owns, e.g. ``dedup`` (the LSH
    parameters and per-level statistics) or ``removals_per_rule``; two stages claiming one key is an
    error."""

    counts: Mapping[str, Any] = field(default_factory=dict)
    entries: Mapping[str, Any] = field(default_factory=dict)


class Stage:
    """Base of every stage: a name, a kind, the config section it reads, the files it depends on."""

    name: ClassVar[str]
    kind: ClassVar[str]
    #: sections of the config (fields of :class:`corpuspipe.config.PipelineConfig`) this stage reads
    #: (their JSON goes into the cache key)
    config_sections: ClassVar[tuple[str, ...]] = ()

    def config_slice(self, cfg: PipelineConfigBase) -> dict[str, Any]:
        dumped = cfg.model_dump(mode="json")
        return {s: dumped[s] for s in self.config_sections}

    def input_files(self, cfg: PipelineConfigBase) -> list[Path]:
        """Files besides the data that change this stage's output (e.g. a user rules file)."""
        return []

    def report(self, counts: Mapping[str, int], fact: Any, cfg: PipelineConfigBase) -> "StageReport":
        """What the release manifest shows of this stage: its counters summed over every shard and
        reduce (``counts``) and, for a corpus stage, its fact (None for the others).  By default the
        counters as they are; a stage overrides this to shape them or to own top-level manifest
        entries (see :class:`StageReport`), so the release layer never needs its name."""
        return StageReport(counts=dict(sorted(counts.items())))

    def fingerprint(self, cfg: PipelineConfigBase) -> str:
        """Config slice + contents of the stage's input files: what its cache key needs beyond the data."""
        h = hashlib.sha256(f"{self.kind}:{self.name}\0".encode())
        h.update(json.dumps(self.config_slice(cfg), sort_keys=True, ensure_ascii=False).encode())
        for p in self.input_files(cfg):
            h.update(b"\0file\0" + hashlib.sha256(Path(p).read_bytes()).hexdigest().encode())
        return h.hexdigest()


class SourceStage(Stage):
    kind: ClassVar[str] = "source"

    def read_groups(self, raw_root: Path, rel_paths: Sequence[str], ctx: Context) -> Iterator[Shard]:
        """The shard's essays in groups (at least one), each with the sources and quarantine entries
        finished since the previous one: a huge file is never one list (issue 11)."""
        raise NotImplementedError


class ShardStage(Stage):
    kind: ClassVar[str] = "shard"

    def process(self, batch: Shard, ctx: Context) -> Shard:
        raise NotImplementedError


@dataclass(frozen=True)
class Tasks:
    """One parallel step of a reduce (or of the release writer): ``fn(*a)`` for every ``a`` in
    ``args``, each on whichever worker the runner picks; the results come back in the order of
    ``args``.  ``fn`` is a module-level function (it is pickled by name to worker processes and
    Dask workers) and ``args`` hold plain values (paths as strings, config as JSON): a task reads
    what it needs from disk, so its memory is set by what one task is given, never by the corpus."""

    label: str  # what the progress display and the manifest's step timings call this step
    fn: Callable[..., Any]
    args: Sequence[tuple]


#: What ``CorpusStage.reduce`` may return: a generator that yields :class:`Tasks`, receives their
#: results as the value of each ``yield``, and returns the fact.
Reduction = Generator[Tasks, list, Any]


def drive(reduction: Union[Reduction, Any], run_tasks: Callable[[Tasks], list]) -> Any:
    """Run a reduce's glue to its fact: every :class:`Tasks` it yields goes to ``run_tasks`` (the
    runner: serial, a process pool, Prefect tasks), whose results are sent back in.  A plain value
    (a reduce that needed no task) is the fact as it is."""
    if not inspect.isgenerator(reduction):
        return reduction
    try:
        step = next(reduction)
        while True:
            step = reduction.send(run_tasks(step))
    except StopIteration as stop:
        return stop.value


def call(fn: Callable[..., Any], args: tuple) -> Any:
    """``fn(*args)``: the one function of a step that runs several functions' tasks (:func:`together`)."""
    return fn(*args)


def together(*reductions: Union[Reduction, Any]) -> Reduction:
    """Several independent reductions as one: each step holds the tasks every unfinished one
    yielded, so the workers are never waiting on one small reduction's step while another has work
    (the dedup stage's document and section levels).  Returns the list of their facts."""
    gens = [r for r in reductions]
    facts: list[Any] = [None] * len(gens)
    pending: dict[int, Tasks] = {}
    for i, g in enumerate(gens):
        if inspect.isgenerator(g):
            try:
                pending[i] = next(g)
            except StopIteration as stop:
                facts[i] = stop.value
        else:
            facts[i] = g
    while pending:
        order = sorted(pending)
        labels = [pending[i].label for i in order]
        head = labels[0].split(": ", 1)[0] + ": "
        if len(labels) > 1 and all(x.startswith(head) for x in labels):  # "dedup: bands (document) + bands (section)"
            label = head + " + ".join(x[len(head):] for x in labels)
        else:
            label = " + ".join(labels)
        args = [(pending[i].fn, tuple(a)) for i in order for a in pending[i].args]
        results = yield Tasks(label, call, args)
        at = 0
        for i in order:
            n = len(pending[i].args)
            mine, at = results[at: at + n], at + n
            try:
                pending[i] = gens[i].send(mine)
            except StopIteration as stop:
                facts[i] = stop.value
                del pending[i]
    return facts


def serial_tasks(step: Tasks) -> list:
    """The simplest runner: every task of the step in this process, one after the other."""
    return [step.fn(*a) for a in step.args]


@dataclass(frozen=True)
class ReleaseInputs:
    """What a corpus decision adds to the release tables, as files the writer reads -- so the
    release layer reads every stage the same way and knows none by name.

    ``joins``: table -> Parquet files keyed by an ``id`` column (the table's id: ``doc_id``,
    ``section_id``) holding some of that table's columns (e.g. ``cluster_id``, ``duplicate_of``,
    ``cluster_size``); a row of the table that is in none of them keeps the release contract's
    default for those columns.  ``rows``: table -> Parquet files of whole rows of that table (its
    schema, in ``core.schemas``), appended in the order given."""

    joins: Mapping[str, Sequence[str]] = field(default_factory=dict)
    rows: Mapping[str, Sequence[str]] = field(default_factory=dict)


class CorpusStage(Stage):
    kind: ClassVar[str] = "corpus"
    #: True when the decision changes later batches: ``apply`` then runs on every batch at the
    #: start of the next pass (before its shard stages), and the fact is part of that pass's key.
    applies: ClassVar[bool] = False

    def collect(self, batch: Shard, ctx: Context) -> Any:
        """Per shard: a small, JSON-able partial result (write bigger ones under ``ctx.work``)."""
        raise NotImplementedError

    def reduce(self, partials: Sequence[Any], ctx: Context) -> Union[Reduction, Any]:
        """Once: the corpus-level fact, JSON-able (paths as strings), stored as ``ctx.facts[name]``.
        Heavy work is yielded as :class:`Tasks` (see the module docstring); the code between the
        yields runs in the orchestrating process and must stay small."""
        raise NotImplementedError

    def apply(self, batch: Shard, ctx: Context) -> Shard:
        """Per batch of the next pass, when ``applies``: use the fact ``ctx.facts[self.name]``."""
        return batch

    def quarantine(self, fact: Any) -> list[QuarantineEntry]:
        """Inputs the decision rejects as a whole (e.g. byte-identical copies of a file), for the
        release's quarantine table."""
        return []

    def release_inputs(self, fact: Any) -> ReleaseInputs:
        """Columns and rows the decision contributes to the release tables (see :class:`ReleaseInputs`)."""
        return ReleaseInputs()

