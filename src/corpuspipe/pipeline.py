"""The pipeline: one list of stages, the plan that fuses them, and the functions that run it.

``STAGES`` is the pipeline.  :func:`plan` cuts it into *passes*: a pass takes one shard through
every consecutive shard stage in one go (one task, one process) and ends where a corpus-level
stage needs the whole corpus — its ``collect`` runs at the end of the pass, its ``reduce`` once
between passes, its ``apply`` (if any) at the start of the next pass.  With today's stages:

    pass 0: ingest                         -> collect identical_files, watermark
    reduce: identical_files, watermark
    pass 1: apply identical_files, watermark; normalize; section  -> collect dedup
    reduce: dedup
    write : the release, streamed shard by shard

Everything here is plain Python over paths: the Prefect flow (``flows/release.py``), the local
runner below (tests, bench) and the Dask/process runners call the same :func:`run_pass`,
:func:`run_reduce` and the release writer, so no stage is wired by hand anywhere else.

**One cache mechanism.**  Each pass's output for a shard is stored under ``<out>/.work/pass<k>/``
named by a key over: the code fingerprint, the fingerprints of the stages it runs (config slice
+ contents of their input files, e.g. a user rules file), the *contents* of its inputs (raw file
bytes for pass 0, the previous pass's key after that) and the facts it applies.  The metadata file
is written last, so its presence means the output is complete; a re-run finds it and skips the
work.  Reduces are keyed the same way over their partials.  Orchestrators add no cache of their
own, so a re-run is as cheap under Prefect as in a test.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, NamedTuple, Sequence

import xxhash

from corpuspipe import __version__
from corpuspipe.core import shardio
from corpuspipe.core.config import PipelineConfig
from corpuspipe.core.io import file_hash, write_json
from corpuspipe.core.records import QuarantineEntry, Shard, SourceInfo
from corpuspipe.core.stage import Context, CorpusStage, ShardStage, SourceStage, Stage, drive, serial_tasks
from corpuspipe.stages.dedup import NearDuplicates
from corpuspipe.stages.identical_files import IdenticalFiles
from corpuspipe.stages.ingest import Ingest
from corpuspipe.stages.normalize import Normalize
from corpuspipe.stages.quality import Quality
from corpuspipe.stages.section import Section
from corpuspipe.stages.watermark import Watermark

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


def plan(stages: Sequence[Stage] = STAGES) -> list[Pass]:
    """Cut the stage list into passes at corpus stages (consecutive corpus stages share one cut)."""
    if not stages:
        raise ValueError("a pipeline starts with its source stage")
    passes: list[Pass] = []
    source = stages[0]
    if not isinstance(source, SourceStage):
        raise ValueError("a pipeline starts with its source stage")
    applies: list[CorpusStage] = []
    shard: list[ShardStage] = []
    collects: list[CorpusStage] = []
    for st in stages[1:]:
        if isinstance(st, ShardStage):
            if collects:  # a shard stage after corpus stages starts the next pass
                passes.append(Pass(len(passes), source, tuple(applies), tuple(shard), tuple(collects)))
                source, applies, shard, collects = None, [c for c in collects if c.applies], [], []
            shard.append(st)
        elif isinstance(st, CorpusStage):
            collects.append(st)
        else:
            raise ValueError(f"stage {st.name}: a {st.kind} stage can only come first")
    passes.append(Pass(len(passes), source, tuple(applies), tuple(shard), tuple(collects)))
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


def file_digest(path: Path) -> str:
    """Fast content digest for cache keys (xxh3-128: ~10 GB/s, so hashing a crawl costs nothing)."""
    return file_hash(path, xxhash.xxh3_128(), 1 << 22)


def _fact_digest(fact: Any) -> str:
    return hashlib.sha256(json.dumps(fact, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


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
    from corpuspipe.stages.ingest import files as ingest_files

    sized, quarantine = ingest_files.discover_sized(Path(raw_root), cfg.ingest)
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
    partials: dict[str, Any] = field(default_factory=dict)  # corpus stage -> its collect() result
    essay_count: int = 0
    cached: bool = False

    def to_json(self) -> dict:
        d = asdict(self)
        d.pop("cached")
        return d


# What a finished shard result keeps once its pass's reduces have run (see :func:`slim_result`).
SLIM_KEYS = ("key", "essays", "sidecar", "source_count", "quarantine_count", "counts", "timings", "essay_count",
             "cached")


def slim_result(result: dict, work: str | Path) -> dict:
    """A shard result without its corpus stages' partials, once the reduces consumed them: what the
    next pass, the writer and the pruning need.  The partials' files are kept by name (``files``),
    since a re-run's cache hit needs them.  Pass 0's identical-files partial lists every file's sha256
    (30 MB of JSON on the 1.3 GB crawl), which the orchestrator otherwise held to the end of the run."""
    out = {k: result[k] for k in SLIM_KEYS if k in result}
    out["files"] = sorted(set(result.get("files", [])) | set(_paths_in(result.get("partials", {}), Path(work))))
    return out


def shard_files(result: dict) -> tuple[list[dict], list[dict]]:
    """(sources, quarantine) of one shard result, as dicts of SourceInfo / QuarantineEntry fields."""
    d = json.loads(Path(result["sidecar"]).read_text(encoding="utf-8"))
    return d["sources"], d["quarantine"]


def _meta_path(work: Path, index: int, key: str) -> Path:
    return Path(work) / f"pass{index}" / f"{key}.json"


def _load_cached(meta: Path, work: Path) -> ShardResult | None:
    """A finished pass output, if its metadata and every file it names are still there."""
    try:
        d = json.loads(meta.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    try:
        result = ShardResult(**d, cached=True)  # the key covers the code: this layout, unless damaged
    except TypeError:
        return None  # valid JSON with other fields (a damaged or foreign file): recompute, never crash
    if not Path(result.essays).is_file() or not Path(result.sidecar).is_file():
        return None
    if not all(Path(f).exists() for f in _paths_in(result.partials, work)):
        return None
    return result


def pass_key(p: Pass, cfg: PipelineConfig, input_key: str, facts: dict[str, Any]) -> str:
    parts = [code_fingerprint(), f"pass{p.index}", input_key]
    for st in (*([p.source] if p.source else []), *p.applies, *p.stages, *p.collects):
        parts.append(st.fingerprint(cfg))
    for st in p.applies:
        parts.append(_fact_digest(facts.get(st.name)))
    return _key(*parts)


def _pass_key_of(p: Pass, shard: list[str] | dict, cfg: PipelineConfig, raw_root: str,
                 facts: dict[str, Any]) -> str:
    """Pass key of one shard: over its raw files' content digests for a source pass, the previous
    pass's key after."""
    if p.source is not None:
        digests = []
        root = os.fspath(raw_root)
        for rel in shard:  # type: ignore[union-attr]
            try:
                digests.append(f"{rel}:{file_digest(os.path.join(root, rel))}")  # type: ignore[arg-type]
            except OSError as exc:  # ingest quarantines it; the key still differs from a readable file
                digests.append(f"{rel}:unreadable:{type(exc).__name__}")
        input_key = _key(*digests)
    else:
        input_key = shard["key"]  # type: ignore[index]
    return pass_key(p, cfg, input_key, facts)


def lookup_pass(index: int, shard: list[str] | dict, cfg_json: str, raw_root: str, work: str,
                facts: dict[str, Any] | None = None, stages: Sequence[Stage] = STAGES) -> tuple[str, dict | None]:
    """(pass key, :func:`run_pass`'s result if it is already in the work folder, else None).

    Cheap (hashes the shard's raw files, reads one JSON), so an orchestrator asks this in its own
    thread and sends only a miss, with its key, to a worker process: an unchanged re-run then starts
    no worker at all (spawning and importing two workers cost 2-10 s of a re-run), and a miss is not
    hashed twice."""
    cfg = PipelineConfig.model_validate_json(cfg_json)
    key = _pass_key_of(plan(stages)[index], shard, cfg, raw_root, facts or {})
    cached = _load_cached(_meta_path(Path(work), index, key), Path(work))
    return key, None if cached is None else {**cached.to_json(), "cached": True}


def run_pass(
    index: int,
    shard: list[str] | dict,
    cfg_json: str,
    raw_root: str,
    work: str,
    facts: dict[str, Any] | None = None,
    key: str | None = None,
    stages: Sequence[Stage] = STAGES,
) -> dict:
    """Run pass ``index`` over one shard: raw paths for pass 0, the previous pass's result after.

    Returns the :class:`ShardResult` as a dict (cheap to pass between processes and orchestrators).
    ``key``: given by a caller whose :func:`lookup_pass` found nothing cached; without it the
    lookup is done here.
    """
    if key is None:
        key, hit = lookup_pass(index, shard, cfg_json, raw_root, work, facts, stages)
        if hit is not None:
            return hit
    cfg = PipelineConfig.model_validate_json(cfg_json)
    p = plan(stages)[index]
    facts = facts or {}
    work_dir = Path(work)
    meta = _meta_path(work_dir, index, key)
    if p.source is not None:
        rel_paths = list(shard)  # type: ignore[arg-type]
    else:
        prev_sources, prev_quarantine = shard_files(shard)  # type: ignore[arg-type]

    ctx = Context(cfg, facts, work_dir, shard_key=key)
    essays_path = work_dir / f"pass{index}" / f"{key}.parquet"
    writer = shardio.EssayWriter(essays_path)
    partials: dict[str, list] = {st.name: [] for st in p.collects}
    n_essays = 0
    try:
        if p.source is not None:
            shard_batch = Shard()
            groups: Iterator[list] = _source_groups(p.source, Path(raw_root), rel_paths, ctx, shard_batch)
        else:
            shard_batch = Shard(sources=[SourceInfo(**s) for s in prev_sources],
                                quarantine=[QuarantineEntry(**q) for q in prev_quarantine])
            del prev_sources, prev_quarantine
            groups = shardio.iter_essays(Path(shard["essays"]))  # type: ignore[index]  # one row group at a time: bounded memory
        for g, essays in enumerate(groups):
            batch = Shard(essays=essays, sources=shard_batch.sources, quarantine=shard_batch.quarantine)
            for corpus_st in p.applies:  # the decisions of the reduces before this pass
                nbytes = batch.text_bytes()
                t0 = STAGE_CLOCK()
                batch = corpus_st.apply(batch, ctx)
                ctx.timed(corpus_st.name, STAGE_CLOCK() - t0, nbytes)
            for st in p.stages:
                nbytes = batch.text_bytes()
                t0 = STAGE_CLOCK()
                batch = st.process(batch, ctx)
                ctx.timed(st.name, STAGE_CLOCK() - t0, nbytes)
            ctx.shard_key = f"{key}-{g:04d}"  # collect files are named per group
            for st in p.collects:
                nbytes = batch.text_bytes()
                t0 = STAGE_CLOCK()
                partials[st.name].append(st.collect(batch, ctx))
                ctx.timed(f"{st.name}.collect", STAGE_CLOCK() - t0, nbytes)
            writer.write(batch.essays)
            n_essays += len(batch.essays)
            shard_batch.sources, shard_batch.quarantine = batch.sources, batch.quarantine
        writer.close()
    except BaseException:
        writer.abort()
        raise
    sidecar = work_dir / f"pass{index}" / f"{key}.files.json"
    write_json(sidecar, {"sources": [asdict(s) for s in shard_batch.sources],
                         "quarantine": [asdict(q) for q in shard_batch.quarantine]})
    result = ShardResult(
        key=key,
        essays=str(essays_path),
        sidecar=str(sidecar),
        source_count=len(shard_batch.sources),
        quarantine_count=len(shard_batch.quarantine),
        counts=ctx.counts,
        timings={k: [round(v.seconds, 6), v.bytes] for k, v in sorted(ctx.timings.items())},
        partials=partials,
        essay_count=n_essays,
    )
    write_json(meta, result.to_json())  # last: its presence means the pass is complete
    return {**result.to_json(), "cached": False}


def _load_reduce(work: Path, stage_name: str, key: str) -> dict | None:
    meta = work / "reduce" / f"{stage_name}-{key}.json"
    try:
        d = json.loads(meta.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not all(Path(p).exists() for p in d.get("files", [])):
        return None
    return {**d, "cached": True}


def lookup_reduce(stage_name: str, results: Sequence[dict], cfg_json: str, work: str,
                  stages: Sequence[Stage] = STAGES) -> tuple[str, dict | None]:
    """(reduce key, :func:`run_reduce`'s result if it is already in the work folder, else None);
    see :func:`lookup_pass`.  The key digests every partial, so it is computed once per build."""
    cfg = PipelineConfig.model_validate_json(cfg_json)
    st = next(s for s in stages if s.name == stage_name)
    partials = [part for r in results for part in r["partials"][stage_name]]  # one per row group
    key = _key(code_fingerprint(), "reduce", st.fingerprint(cfg), _fact_digest(partials))
    return key, _load_reduce(Path(work), stage_name, key)


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


def run_reduce(stage_name: str, results: Sequence[dict], cfg_json: str, work: str, key: str | None = None,
               stages: Sequence[Stage] = STAGES) -> dict:
    """The corpus-level decision of one stage over all shards' partials; cached by their content
    (``key`` as in :func:`run_pass`)."""
    if key is None:
        key, hit = lookup_reduce(stage_name, results, cfg_json, work, stages)
        if hit is not None:
            return hit
    cfg = PipelineConfig.model_validate_json(cfg_json)
    st = next(s for s in stages if s.name == stage_name)
    partials = [part for r in results for part in r["partials"][stage_name]]  # one per row group
    meta = Path(work) / "reduce" / f"{stage_name}-{key}.json"
    ctx = Context(cfg, {}, Path(work), shard_key=key)
    t0 = time.perf_counter()
    fact = drive(st.reduce(partials, ctx), serial_tasks)
    seconds = time.perf_counter() - t0
    files = sorted(_paths_in(fact, Path(work)))
    out = {"stage": stage_name, "key": key, "fact": fact, "counts": ctx.counts, "seconds": round(seconds, 6),
           "files": files}
    write_json(meta, out)
    return {**out, "cached": False}


def _paths_in(value: Any, work: Path) -> Iterator[str]:
    if isinstance(value, str) and value.startswith(str(work)):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _paths_in(v, work)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _paths_in(v, work)


def work_files(build: "BuildResult", work: Path) -> set[Path]:
    """Every work file a build used (the rest of ``.work`` may be pruned)."""
    keep: set[Path] = set()
    for index, results in enumerate(build.passes):
        for r in results:
            keep.add(Path(r["essays"]))
            keep.add(Path(r["sidecar"]))
            keep.add(_meta_path(work, index, r["key"]))
            keep.update(Path(p) for p in r.get("files", []))
            keep.update(Path(p) for p in _paths_in(r.get("partials", {}), work))
    for red in build.reduces.values():
        keep.update(Path(p) for p in red.get("files", []))
        keep.add(Path(work) / "reduce" / f"{red['stage']}-{red['key']}.json")
    return keep


def prune_work(work: Path, keep: set[Path]) -> int:
    """Delete work files this build did not use (earlier inputs or configs): content-addressed
    files would otherwise pile up with every changed input.  Deleting ``.work`` is always safe."""
    keep_set = {p.resolve() for p in keep}
    removed = 0
    for p in Path(work).rglob("*"):
        if p.is_file() and p.resolve() not in keep_set:
            p.unlink(missing_ok=True)
            removed += 1
    return removed


# -- a whole build without an orchestrator -------------------------------------------------
Mapper = Callable[[Callable[..., dict], list[Any]], list[dict]]


def serial_map(fn: Callable[..., dict], args: list[tuple]) -> list[dict]:
    return [fn(*a) for a in args]


def process_map(workers: int) -> Mapper:
    def run(fn: Callable[..., dict], args: list[tuple]) -> list[dict]:
        if len(args) <= 1 or workers <= 1:
            return serial_map(fn, args)
        with ProcessPoolExecutor(max_workers=workers) as ex:
            return list(ex.map(fn, *zip(*args)))

    return run


@dataclass
class BuildResult:
    quarantine: list[QuarantineEntry]
    passes: list[list[dict]]
    reduces: dict[str, dict]
    wall: dict[str, float]
    stages: Sequence[Stage] = STAGES  # the stage list it ran (the release reports each one's part)


class NotCached(Exception):
    """``build(..., cached_only=True)`` met a pass or a reduce whose result is not in the work folder."""


def _cached_pass(index: int, shard: Any, cfg_json: str, raw_root: str, work: str, facts: dict,
                 stages: Sequence[Stage] = STAGES) -> dict:
    _key_, hit = lookup_pass(index, shard, cfg_json, raw_root, work, facts, stages)
    if hit is None:
        raise NotCached(f"pass {index}")
    return hit


def _cached_reduce(stage_name: str, results: Sequence[dict], cfg_json: str, work: str,
                   stages: Sequence[Stage] = STAGES) -> dict:
    _key_, hit = lookup_reduce(stage_name, results, cfg_json, work, stages)
    if hit is None:
        raise NotCached(f"reduce {stage_name}")
    return hit


def build(raw_root: Path, cfg: PipelineConfig, work: Path, mapper: Mapper = serial_map,
          progress: Callable[[str, int, int], None] | None = None, cached_only: bool = False,
          stages: Sequence[Stage] = STAGES) -> BuildResult:
    """Run every pass and reduce of the plan; return what the release writer needs.

    ``cached_only``: compute nothing -- answer every pass and reduce from the work folder (the same
    keys as a real run) and raise :class:`NotCached` at the first one that is not there.  The CLI
    asks this before it needs Prefect: an unchanged re-run then ends in seconds instead of waiting
    ~10 s for Prefect's server to import and start (issue 11).

    ``stages``: the stage list to run (default :data:`STAGES`), e.g. with a stage under development."""
    if cached_only:
        mapper = serial_map
    run_p, run_r = (_cached_pass, _cached_reduce) if cached_only else (run_pass, run_reduce)
    run_p, run_r = functools.partial(run_p, stages=stages), functools.partial(run_r, stages=stages)
    cfg_json = cfg.model_dump_json()
    raw, work_s = str(Path(raw_root).resolve()), str(Path(work).resolve())
    wall: dict[str, float] = {}
    t = time.perf_counter()
    shards, _sizes, quarantine = discover(Path(raw), cfg)
    wall["discover"] = time.perf_counter() - t
    facts: dict[str, Any] = {}
    reduces: dict[str, dict] = {}
    inputs: list[Any] = shards
    all_results: list[list[dict]] = []
    for p in plan(stages):
        t = time.perf_counter()
        results = mapper(run_p, [(p.index, s, cfg_json, raw, work_s, facts) for s in inputs])
        wall[f"pass{p.index}"] = time.perf_counter() - t
        all_results.append(results)
        for st in p.collects:
            t = time.perf_counter()
            red = run_r(st.name, results, cfg_json, work_s)
            wall[f"{st.name}.reduce"] = time.perf_counter() - t
            reduces[st.name] = red
            facts[st.name] = red["fact"]
        results = [slim_result(r, work_s) for r in results]
        all_results[-1] = results
        inputs = results
    return BuildResult(quarantine, all_results, reduces, wall, tuple(stages))
