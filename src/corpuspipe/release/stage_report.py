"""What each stage of a build tells the release: its figures for the manifest, the inputs it rejects.

The release layer knows no stage by name: it loops over the stage list the build ran
(``build.stages``: :data:`corpuspipe.pipeline.STAGES` unless a caller gave another) and asks each
stage

* :meth:`~corpuspipe.core.stage.Stage.report` -- its counters (summed over every shard and reduce)
  and fact turned into its entry's ``counts`` and the top-level manifest keys it owns
  (``dedup``, ``normalize``, ``redactions``, ``removals_per_rule``, ...);
* :meth:`~corpuspipe.core.stage.CorpusStage.quarantine` -- inputs a corpus decision rejects as a
  whole (byte-identical copies of a file).

Timings are the engine's, the same for every stage: compute seconds summed over shards (a corpus
stage's ``collect_seconds`` and ``reduce_seconds`` are part of them), the input size and MB/s of its
per-shard work.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping, Sequence

from corpuspipe.config import PipelineConfig
from corpuspipe.core.records import QuarantineEntry
from corpuspipe.core.stage import CorpusStage

if TYPE_CHECKING:
    from corpuspipe.pipeline import BuildResult


def _summed(build: BuildResult, names: Sequence[str]) -> dict[str, dict]:
    """Per stage: seconds, bytes, collect and reduce seconds, counters summed over the build."""
    stages: dict[str, dict] = {n: {"seconds": 0.0, "bytes": 0, "collect_seconds": 0.0, "reduce_seconds": 0.0,
                                   "counts": {}} for n in names}

    def add_counts(name: str, counts: Mapping[str, int]) -> None:
        c = stages.setdefault(name, {"seconds": 0.0, "bytes": 0, "counts": {}})["counts"]
        for k, v in counts.items():
            c[k] = c.get(k, 0) + v

    for results in build.passes:
        for r in results:
            for name, (sec, nbytes) in r["timings"].items():
                base, _, part = name.partition(".")
                s = stages[base]
                if part == "collect":
                    s["collect_seconds"] += sec
                else:
                    s["bytes"] += nbytes
                s["seconds"] += sec
            for name, counts in r["counts"].items():
                add_counts(name, counts)
    for name, red in build.reduces.items():
        stages[name]["reduce_seconds"] += red["seconds"]
        stages[name]["seconds"] += red["seconds"]
        for stage, counts in red.get("counts", {}).items():
            add_counts(stage, counts)
    return stages


def stage_reports(build: BuildResult, cfg: PipelineConfig) -> tuple[dict[str, dict], dict[str, Any]]:
    """(the manifest's ``stages``: one entry per stage with its timings and counts; the top-level
    manifest entries the stages own).  Two stages claiming one key is an error, not a silent
    overwrite."""
    summed = _summed(build, [st.name for st in build.stages])
    by_name = {st.name: st for st in build.stages}
    out: dict[str, dict] = {}
    entries: dict[str, Any] = {}
    owner: dict[str, str] = {}
    for name, s in summed.items():
        mb = s["bytes"] / 1e6
        work = s["seconds"] - s.get("collect_seconds", 0.0) - s.get("reduce_seconds", 0.0)
        entry: dict[str, Any] = {"seconds": round(s["seconds"], 3), "input_mb": round(mb, 3),
                                 "mb_per_s": round(mb / s["seconds"], 2) if s["seconds"] > 0 and mb else None}
        if s.get("collect_seconds") or s.get("reduce_seconds"):
            entry["apply_seconds"] = max(0.0, round(work, 3))  # float residue is not "-0.0 s"
            entry["collect_seconds"] = round(s["collect_seconds"], 3)
            entry["reduce_seconds"] = round(s["reduce_seconds"], 3)
        st = by_name.get(name)
        if st is None:  # counters under a name that is no stage: shown as they are
            counts: Mapping[str, Any] = dict(sorted(s["counts"].items()))
        else:
            rep = st.report(s["counts"], (build.reduces.get(name) or {}).get("fact"), cfg)
            counts = rep.counts
            for key, value in rep.entries.items():
                if key in owner:
                    raise ValueError(f"stages {owner[key]} and {name} both report the manifest entry {key!r}")
                owner[key] = name
                entries[key] = value
        if counts:
            entry["counts"] = dict(counts)
        out[name] = entry
    return out, entries


def stage_quarantine(build: BuildResult) -> list[QuarantineEntry]:
    """Inputs rejected as a whole by the build's corpus decisions (e.g. byte-identical files)."""
    out: list[QuarantineEntry] = []
    for st in build.stages:
        if isinstance(st, CorpusStage):
            out.extend(st.quarantine((build.reduces.get(st.name) or {}).get("fact")))
    return out
