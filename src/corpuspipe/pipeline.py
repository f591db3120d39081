"""The pipeline: one list of stages, the plan that fuses them, and the one loop that runs them.

``STAGES`` is the pipeline.  :func:`plan` cuts it into *passes*: a pass takes one shard through
every consecutive shard stage in one go (one task, one process) and ends where a corpus-level
stage needs the whole corpus -- its ``collect`` runs at the end of the pass, its ``reduce`` once
between passes (its heavy work as parallel tasks it yields), its ``apply`` (``applies = True``)
at the start of the next pass.  With today's stages:

    pass 0: ingest                         -> collect identical_files, watermark
    reduce: identical_files, watermark
    pass 1: apply identical_files, watermark; normalize; section; quality  -> collect dedup
    reduce: dedup
    write : the release (release/)

**One run loop.**  :func:`build_steps` is that loop, written once: it finds and hashes the raw
files once, asks the work cache for every pass and reduce, and yields a
:class:`~corpuspipe.core.runner.Step` only where there is work to do.  Whoever drives it chooses
where tasks run (``core/runner.py``): :func:`build` here (serial or a process pool: tests, bench
tools), the Prefect flow (``corpuspipe.orchestrate``), and the CLI's two shortcuts -- "nothing to
compute" (driving it with a runner that refuses work) and "start the first pass while Prefect's
server starts" (taking its first step early).  No copy of the loop exists elsewhere.

**One cache mechanism** (``core/workcache.py``).  Each pass's output for a shard is stored under
``<out>/.work/pass<k>/`` named by a key over: the code fingerprint, the fingerprints of the stages
it runs (config slice + contents of their input files, e.g. a user rules file), the *contents* of
its inputs (raw file bytes for pass 0, the previous pass's key after that) and the facts it
applies.  Reduces are keyed the same way over their partials.  Every record carries the digests of
the files it covers and is verified before it is used; a damaged entry is recomputed.
Orchestrators add no cache of their own, so a re-run is as cheap under Prefect as in a test.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Generator, Iterator, NamedTuple, Sequence

from corpuspipe import __version__
from corpuspipe.core import shardio
from corpuspipe.config import PipelineConfig
from corpuspipe.core.io import write_json
from corpuspipe.core.records import QuarantineEntry, Shard, SourceInfo
from corpuspipe.core import runner as runners
from corpuspipe.core.runner import Done, NotCached, Progress, Runner, Step, drive, serial
from corpuspipe.core.stage import Context, CorpusStage, ShardStage, SourceStage, Stage, Tasks
from corpuspipe.core.workcache import WorkCache, file_digest
from corpuspipe.stages.dedup import NearDuplicates
from corpuspipe.stages.identical_files import IdenticalFiles
from corpuspipe.stages.ingest import Ingest
from corpuspipe.stages.normalize import Normalize
from corpuspipe.stages.quality import Quality
from corpuspipe.stages.section import Section
from corpuspipe.stages.watermark import Watermark

__all__ = ["STAGES", "Pass", "plan", "build_steps", "build", "Build", "NotCached", "run_pass", "discover"]

#: The pipeline, in order.  A new stage is one module under ``stages/`` and one line here
#: (docs/adding-a-stage.md).
STAGES: tuple[Stage, ...] = (
    Ingest(),
    IdenticalFiles(),
    Watermark(),
    Normalize(),
    Section(),
    Quality(),
    NearDuplicates(),
)


@dataclass(frozen=True)
class Pass:
    """One fused pass over every shard."""

    index: int
    source: SourceStage | None  # only the first pass reads raw files
    applies: tuple[CorpusStage, ...]  # decided before this pass; applied to each batch first
    stages: tuple[ShardStage, ...]
    collects: tuple[CorpusStage, ...]  # their partial results are gathered at the end of the pass

    @property
    def names(self) -> list[str]:
        return [s.name for s in (*([self.source] if self.source else []), *self.applies, *self.stages)]

    @property
    def label(self) -> str:
        return f"pass {self.index}: " + ", ".join(self.names)


def plan(stages: Sequence[Stage] = STAGES) -> list[Pass]:
    """Cut the stage list into passes at corpus stages (consecutive corpus stages share one cut)."""
    if not stages:
        raise ValueError("a pipeline starts with its source stage")
    passes: list[Pass] = []
    source = stages[0]
    if not isinstance(source, SourceStage):
        raise ValueError("a pipeline starts with its source stage")
    first: SourceStage | None = source
    applies: list[CorpusStage] = []
    shard: list[ShardStage] = []
    collects: list[CorpusStage] = []
    for st in stages[1:]:
        if isinstance(st, ShardStage):
            if collects:  # a shard stage after corpus stages starts the next pass
                passes.append(Pass(len(passes), first, tuple(applies), tuple(shard), tuple(collects)))
                first, applies, shard, collects = None, [c for c in collects if c.applies], [], []
            shard.append(st)
        elif isinstance(st, CorpusStage):
            collects.append(st)
        else:
            raise ValueError(f"stage {st.name}: a {st.kind} stage can only come first")
    passes.append(Pass(len(passes), first, tuple(applies), tuple(shard), tuple(collects)))
    return passes


# The clock each stage is timed with inside a pass (the manifest's per-stage seconds): wall time in a
# worker process.  ``bench/profile_pass1.py`` sets ``time.process_time`` to measure CPU seconds of
# the same run_pass on a shared machine.
STAGE_CLOCK: Callable[[], float] = time.perf_counter


# -- fingerprints and keys -----------------------------------------------------------------
@functools.lru_cache(maxsize=1)
def code_fingerprint() -> str:
    """Hash of the package's code and shipped data: a changed stage module never reuses old work.
    The compiled loops count by their sources (``.pyx``, ``.h``), which the build turns into the ``.so``."""
    import corpuspipe

    root = Path(corpuspipe.__file__).parent
    h = hashlib.sha256(__version__.encode())
    for p in sorted(root.rglob("*")):
        if p.is_file() and p.suffix in (".py", ".pyx", ".h", ".toml", ".json", ".txt") and "__pycache__" not in p.parts:
            h.update(str(p.relative_to(root)).encode() + b"\0" + p.read_bytes() + b"\0")
    return h.hexdigest()


def _key(*parts: str) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(p.encode() + b"\0")
    return h.hexdigest()[:32]


def _fact_digest(fact: Any) -> str:
    """Digest of an applied fact (identical files, selected boilerplate keys: no work paths in them)."""
    return hashlib.sha256(json.dumps(fact, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def pass_key(p: Pass, cfg: PipelineConfig, input_key: str, facts: dict[str, Any]) -> str:
    parts = [code_fingerprint(), f"pass{p.index}", input_key]
    for st in (*([p.source] if p.source else []), *p.applies, *p.stages, *p.collects):
        parts.append(st.fingerprint(cfg))
    for st in p.applies:
        parts.append(_fact_digest(facts.get(st.name)))
    return _key(*parts)


def _input_key(p: Pass, shard: list[str] | dict, raw_root: str) -> str:
    """Over the shard's raw files' content digests for a source pass (each file hashed once per
    process: ``workcache.file_digest``), the previous pass's key after."""
    if p.source is None:
        return shard["key"]  # type: ignore[index]
    from corpuspipe.stages.ingest.discover import resolve_path

    digests = []
    for rel in shard:  # type: ignore[union-attr]
        # a stored name may be escaped (a non-UTF-8 file name): hash the file it names
        path = os.path.join(raw_root, rel) if "\\" not in rel else resolve_path(Path(raw_root), rel)
        try:
            digests.append(f"{rel}:{file_digest(path)}")
        except OSError as exc:  # ingest quarantines it; the key still differs from a readable file
            digests.append(f"{rel}:unreadable:{type(exc).__name__}")
    return _key(*digests)


@functools.lru_cache(maxsize=4)
def config_of(cfg_json: str) -> PipelineConfig:
    """The config a task was given (as JSON), validated once per process."""
    return PipelineConfig.model_validate_json(cfg_json)


# -- shards ----------------------------------------------------------------------------------
def shard_paths(items: Sequence[tuple[str, int]], size: int, max_bytes: int) -> list[list[str]]:
    """Cut the sorted paths after every path whose hash is 0 mod ``size`` (~size files a shard),
    and wherever a shard would pass ``max_bytes`` or 2x size files.

    Boundaries depend on the paths (and sizes), not on positions, so adding or removing a file
    changes only its own shard and every other shard keeps its cache key.
    """
    shards: list[list[str]] = []
    current: list[str] = []
    nbytes = 0
    size = max(size, 1)
    for p, n in items:
        if current and nbytes + n > max_bytes:
            shards.append(current)
            current, nbytes = [], 0
        current.append(p)
        nbytes += n
        cut = int.from_bytes(hashlib.sha256(p.encode()).digest()[:8], "big") % size == 0
        if cut or len(current) >= 2 * size:
            shards.append(current)
            current, nbytes = [], 0
    if current:
        shards.append(current)
    return shards


class Discovered(NamedTuple):
    shards: list[list[str]]  # raw paths, cut into shards (:func:`shard_paths`)
    sizes: list[int]  # raw bytes of each shard (progress and MB/s are measured against them)
    quarantine: list[QuarantineEntry]  # what discovery already rejected


def discover(raw_root: Path, cfg: PipelineConfig) -> Discovered:
    """The raw files to read, cut into shards, with each shard's size from discovery's one ``stat``
    per file (a second stat pass, through pathlib, was ~1 s of the 100 MB crawl's re-run)."""
    from corpuspipe.stages.ingest.discover import discover_sized

    sized, quarantine = discover_sized(Path(raw_root), cfg.ingest)
    shards = shard_paths(sized, cfg.release.shard_files, cfg.release.shard_max_bytes)
    size_of = dict(sized)
    return Discovered(shards, [sum(size_of[p] for p in s) for s in shards], quarantine)


# -- one pass over one shard -----------------------------------------------------------------
@dataclass
class ShardResult:
    """What a pass hands on: where its essays are, and the small facts about them.

    The shard's per-file lists (its sources and quarantine entries) live in a sidecar file
    (``sidecar``, JSON beside the essays) rather than in the result: the orchestrating process
    keeps every shard's result for the whole run, and on the 1.3 GB crawl (143,566 files, 307
    shards) those lists were 90 of the 90 MB of pass metadata and ~400 MB of the writer process's
    Python heap.  Whoever needs them streams them one shard at a time (:func:`shard_files`)."""

    key: str
    essays: str  # path of the shard's essays (Parquet)
    sidecar: str = ""  # path of the shard's {"sources": [...], "quarantine": [...]} (JSON)
    source_count: int = 0
    quarantine_count: int = 0
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    timings: dict[str, list[float]] = field(default_factory=dict)  # stage -> [seconds, bytes]
    partials: dict[str, Any] = field(default_factory=dict)  # corpus stage -> its collect() results
    essay_count: int = 0


# What a finished shard result keeps once its pass's reduces have run (see :func:`slim_result`).
SLIM_KEYS = ("key", "essays", "sidecar", "source_count", "quarantine_count", "counts", "timings", "essay_count",
             "cached")


def slim_result(result: dict, cache: WorkCache) -> dict:
    """A shard result without its corpus stages' partials, once the reduces consumed them: what the
    next pass, the writer and the pruning need.  The partials' files are kept by name (``files``),
    since a re-run's cache hit needs them.  Pass 0's identical-files partial lists every file's sha256
    (30 MB of JSON on the 1.3 GB crawl), which the orchestrator otherwise held to the end of the run."""
    out = {k: result[k] for k in SLIM_KEYS if k in result}
    out["files"] = sorted(set(result.get("files", [])) | set(cache.paths_in(result.get("partials", {}))))
    return out


def shard_files(result: dict) -> tuple[list[dict], list[dict]]:
    """(sources, quarantine) of one shard result, as dicts of SourceInfo / QuarantineEntry fields."""
    d = json.loads(Path(result["sidecar"]).read_text(encoding="utf-8"))
    return d["sources"], d["quarantine"]


def run_pass(index: int, shard: list[str] | dict, cfg_json: str, raw_root: str, work: str, facts: dict[str, Any],
             key: str | None = None, stages: Sequence[Stage] | None = None) -> dict:
    """The task of pass ``index`` over one shard (raw paths for pass 0, the previous pass's result
    after): run its stages batch by batch, write the essays and the record, return the
    :class:`ShardResult` as a dict (cheap to pass between processes and orchestrators).  ``key``
    is the one the loop looked up and missed (computed here when a tool calls this alone)."""
    cfg = config_of(cfg_json)
    p = plan(stages or STAGES)[index]
    if key is None:
        key = pass_key(p, cfg, _input_key(p, shard, raw_root), facts)
    cache = WorkCache(work)
    work_dir = cache.root
    ctx = Context(cfg, facts, work_dir, shard_key=key)
    essays_path = work_dir / f"pass{index}" / f"{key}.parquet"
    sidecar = work_dir / f"pass{index}" / f"{key}.files.json"
    partials: dict[str, list] = {st.name: [] for st in p.collects}
    writer = shardio.EssayWriter(essays_path)
    try:
        if p.source is not None:
            acc = Shard()
            groups: Iterator[list] = _source_groups(p.source, Path(raw_root), list(shard), ctx, acc)  # type: ignore[arg-type]
        else:
            prev_sources, prev_quarantine = shard_files(shard)  # type: ignore[arg-type]
            acc = Shard(sources=[SourceInfo(**s) for s in prev_sources],
                        quarantine=[QuarantineEntry(**q) for q in prev_quarantine])
            del prev_sources, prev_quarantine
            groups = shardio.iter_essays(Path(shard["essays"]))  # type: ignore[index]  # one row group at a time
        n_essays = 0
        for g, essays in enumerate(groups):
            batch = _run_batch(p, Shard(essays=essays, sources=acc.sources, quarantine=acc.quarantine), ctx)
            ctx.shard_key = f"{key}-{g:04d}"  # collect files are named per group
            for st in p.collects:
                nbytes = batch.text_bytes()
                t0 = STAGE_CLOCK()
                partials[st.name].append(st.collect(batch, ctx))
                ctx.timed(f"{st.name}.collect", STAGE_CLOCK() - t0, nbytes)
            writer.write(batch.essays)
            n_essays += len(batch.essays)
            acc.sources, acc.quarantine = batch.sources, batch.quarantine
        writer.close()
        write_json(sidecar, {"sources": [asdict(s) for s in acc.sources],
                             "quarantine": [asdict(q) for q in acc.quarantine]})
    except BaseException:
        writer.abort()
        sidecar.unlink(missing_ok=True)
        for f in cache.paths_in(partials):  # what the collects of earlier groups already wrote
            Path(f).unlink(missing_ok=True)
        raise
    result = ShardResult(
        key=key, essays=str(essays_path), sidecar=str(sidecar), source_count=len(acc.sources),
        quarantine_count=len(acc.quarantine), counts=ctx.counts,
        timings={k: [round(v.seconds, 6), v.bytes] for k, v in sorted(ctx.timings.items())},
        partials=partials, essay_count=n_essays)
    payload = asdict(result)
    cache.store(f"pass{index}", key, payload)  # last: its presence means the pass is complete
    return {**payload, "cached": False}


def _run_batch(p: Pass, batch: Shard, ctx: Context) -> Shard:
    """The applied decisions of the reduces before this pass, then the pass's shard stages, each timed."""
    for corpus_st in p.applies:
        nbytes = batch.text_bytes()
        t0 = STAGE_CLOCK()
        batch = corpus_st.apply(batch, ctx)
        ctx.timed(corpus_st.name, STAGE_CLOCK() - t0, nbytes)
    for st in p.stages:
        nbytes = batch.text_bytes()
        t0 = STAGE_CLOCK()
        batch = st.process(batch, ctx)
        ctx.timed(st.name, STAGE_CLOCK() - t0, nbytes)
    return batch


def _source_groups(source: SourceStage, raw_root: Path, rel_paths: list[str], ctx: Context, acc: Shard) -> Iterator[list]:
    """The source stage's essays group by group (a 200 MB file is never one list: issue 11);
    its sources and quarantine entries gather in ``acc``; only the time spent inside the source
    counts as its time."""
    it = source.read_groups(raw_root, rel_paths, ctx)
    while True:
        t0 = STAGE_CLOCK()
        part = next(it, None)
        if part is None:
            ctx.timed(source.name, STAGE_CLOCK() - t0, 0)
            return
        acc.sources.extend(part.sources)
        acc.quarantine.extend(part.quarantine)
        ctx.timed(source.name, STAGE_CLOCK() - t0, sum(s.bytes for s in part.sources))
        yield part.essays
        # written: free the group before the next one is read (the caller's loop variables still
        # name it; two 8M-character groups of a huge file at once cost ~0.2 GB more)
        part.essays.clear()


# -- the run loop ----------------------------------------------------------------------------
@dataclass
class Build:
    """What the release writer needs: every pass's (slim) shard results, every reduce's record, what
    discovery rejected, wall seconds per step, and the CPU seconds spent inside each parallel step."""

    quarantine: list[QuarantineEntry]
    passes: list[list[dict]]
    reduces: dict[str, dict]
    wall: dict[str, float]
    steps: list[dict] = field(default_factory=list)  # per step that ran: label, tasks, cpu/wall seconds
    stages: Sequence[Stage] = STAGES  # the stage list it ran (the release reports each one's part)


# The name older callers and tests know.
BuildResult = Build


class StepLog:
    """CPU and wall seconds of every step that ran (tasks, sums, the longest task): the manifest's
    record of how much of a build ran in parallel steps."""

    def __init__(self) -> None:
        self.rows: list[dict] = []

    def values(self, step: Step, done: Sequence[Done]) -> list[Any]:
        self.rows.append({"label": step.label, "tasks": len(done), "cpu_seconds": round(sum(d.cpu for d in done), 3),
                          "task_wall_seconds": round(sum(d.wall for d in done), 3),
                          "max_task_seconds": round(max((d.wall for d in done), default=0.0), 3)})
        return [d.value for d in done]


def steps_of(reduction: Generator[Tasks, list, Any], log: StepLog) -> Generator[Step, list[Done], Any]:
    """A stage's (or the writer's) generator of :class:`Tasks` as the loop's steps."""
    try:
        tasks = next(reduction)
        while True:
            if not tasks.args:  # nothing to run: no step
                tasks = reduction.send([])
                continue
            step = Step(tasks)
            done = yield step
            tasks = reduction.send(log.values(step, done))
    except StopIteration as stop:
        return stop.value


def build_steps(raw_root: Path | str, cfg: PipelineConfig, work: Path | str, stages: Sequence[Stage] = STAGES,
                warn: Callable[[str], None] | None = None) -> Generator[Step, list[Done], Build]:
    """The run loop (see the module docstring): yields a step wherever there is work, returns the
    :class:`Build`.  The raw files are found and hashed once, the config serialized once."""
    cache = WorkCache(work, warn)
    cfg_json = cfg.model_dump_json()
    raw = str(Path(raw_root).resolve())
    log = StepLog()
    wall: dict[str, float] = {}
    t = time.perf_counter()
    found = discover(Path(raw), cfg)
    wall["discover"] = time.perf_counter() - t
    facts: dict[str, Any] = {}
    reduces: dict[str, dict] = {}
    passes: list[list[dict]] = []
    inputs: list[Any] = found.shards
    for p in plan(stages):
        t = time.perf_counter()
        keys = [pass_key(p, cfg, _input_key(p, s, raw), facts) for s in inputs]
        results: list[dict | None] = []
        for k in keys:
            hit = cache.load(f"pass{p.index}", k)
            results.append(None if hit is None else {**hit, "cached": True})
        todo = [i for i, r in enumerate(results) if r is None]
        if todo:
            custom = None if tuple(stages) == STAGES else tuple(stages)  # the default list is the worker's own
            step = Step(Tasks(p.label, run_pass, [(p.index, inputs[i], cfg_json, raw, str(cache.root), facts, keys[i],
                                                   custom) for i in todo]),
                        unit="bytes", sizes=[found.sizes[i] for i in todo],
                        done_before=sum(found.sizes[i] for i, r in enumerate(results) if r is not None),
                        docs_before=sum(r["essay_count"] for r in results if r is not None))
            done = yield step
            for i, value in zip(todo, log.values(step, done)):
                results[i] = value
        wall[f"pass{p.index}"] = time.perf_counter() - t
        for st in p.collects:
            t = time.perf_counter()
            reduces[st.name] = yield from _reduce_steps(st, results, cfg, cache, log)  # type: ignore[arg-type]
            facts[st.name] = reduces[st.name]["fact"]
            wall[f"{st.name}.reduce"] = time.perf_counter() - t
        # the reduces have their partials: keep only what the next pass and the writer need
        inputs = [slim_result(r, cache) for r in results]  # type: ignore[arg-type]
        passes.append(inputs)
    return Build(found.quarantine, passes, reduces, wall, log.rows, tuple(stages))


def _reduce_steps(st: CorpusStage, results: list[dict], cfg: PipelineConfig, cache: WorkCache,
                  log: StepLog) -> Generator[Step, list[Done], dict]:
    """One corpus decision: answered from the cache (keyed by every partial's digest), or its
    reduce run here with its tasks yielded as steps, and recorded."""
    partials = [part for r in results for part in r["partials"][st.name]]  # one per row group
    key = _key(code_fingerprint(), "reduce", st.fingerprint(cfg), cache.digest_of(partials))
    name = f"{st.name}-{key}"
    hit = cache.load("reduce", name)
    if hit is not None:
        return {**hit, "cached": True}
    ctx = Context(cfg, {}, cache.root, shard_key=key)
    t0 = time.perf_counter()
    reduction = st.reduce(partials, ctx)
    fact = (yield from steps_of(reduction, log)) if inspect.isgenerator(reduction) else reduction
    out = {"stage": st.name, "key": key, "fact": fact, "counts": ctx.counts,
           "seconds": round(time.perf_counter() - t0, 6)}
    cache.store("reduce", name, out)
    return {**out, "cached": False}


def work_files(build: Build, work: Path | str) -> set[Path]:
    """Every work file a build used (the rest of ``.work`` may be pruned)."""
    cache = WorkCache(work)
    keep: set[Path] = set()
    for index, results in enumerate(build.passes):
        for r in results:
            keep.update(cache.files_of(f"pass{index}", r["key"]))
            keep.update(Path(p) for p in (r["essays"], r["sidecar"], *r.get("files", [])))
    for red in build.reduces.values():
        keep.update(cache.files_of("reduce", f"{red['stage']}-{red['key']}"))
        keep.update(Path(p) for p in cache.paths_in(red.get("fact")))
    return keep


def prune_work(work: Path | str, keep: set[Path]) -> int:
    """Delete work files this build did not use (earlier inputs or configs)."""
    return WorkCache(work).prune(keep)


# -- a whole build without an orchestrator -------------------------------------------------
def build(raw_root: Path, cfg: PipelineConfig, work: Path, runner: Runner = serial, cached_only: bool = False,
          stages: Sequence[Stage] = STAGES, progress: Progress | None = None,
          warn: Callable[[str], None] | None = None) -> Build:
    """Run the loop to its :class:`Build` with ``runner`` (default: in this process; a
    ``core.runner.ProcessRunner`` for worker processes).

    ``cached_only``: compute nothing -- answer every pass and reduce from the work folder (the same
    keys as a real run) and raise :class:`NotCached` at the first step that has work."""
    if cached_only:
        runner = runners.cached_only
    elif runner is serial and progress is not None:
        runner = functools.partial(serial, progress=progress)
    return drive(build_steps(raw_root, cfg, work, stages, warn), runner)
