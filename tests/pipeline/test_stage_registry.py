"""One stage list, one interface: a stage is one module plus one line in ``pipeline.STAGES``, and the
release learns what a stage counted, rejected and added from the stage itself (issue 22)."""

from __future__ import annotations

import dataclasses
import inspect
import json
import shutil
import typing
from pathlib import Path
from typing import Any, Mapping

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from corpuspipe import pipeline
from corpuspipe.config import PipelineConfig
from corpuspipe.core.records import Shard
from corpuspipe.core.stage import Context, CorpusStage, ShardStage, SourceStage, Stage, StageReport
from corpuspipe.release import stage_report
from corpuspipe.release.assemble import write_release

from tests.helpers.seed_release import plant_copy

CREATED = "2026-01-01T00:00:00Z"

#: the methods the engine calls on each kind (what ``pipeline.run_pass`` / ``run_reduce`` use)
_KIND_METHODS = {SourceStage: ("read_groups",), ShardStage: ("process",), CorpusStage: ("collect", "reduce")}
#: methods a stage may override, with the class that defines their default
_OPTIONAL = {"report": Stage, "input_files": Stage, "quarantine": CorpusStage, "release_inputs": CorpusStage}


class CharCount(ShardStage):
    """The stage a newcomer writes first (docs/adding-a-stage.md): counts, changes nothing."""

    name = "char_count"

    def process(self, batch: Shard, ctx: Context) -> Shard:
        ctx.count(self.name, "chars", sum(len(e.body.text) for e in batch.essays))
        ctx.count(self.name, "documents", len(batch.essays))
        return batch

    def report(self, counts: Mapping[str, int], fact: None, cfg: PipelineConfig) -> StageReport:
        return StageReport(counts=dict(sorted(counts.items())),
                           entries={"chars_per_document": round(counts["chars"] / max(counts["documents"], 1), 3)})


def _with_char_count() -> tuple:
    """The stage list with one line added, after sectioning."""
    names = [st.name for st in pipeline.STAGES]
    at = names.index("section") + 1
    return (*pipeline.STAGES[:at], CharCount(), *pipeline.STAGES[at:])


def test_every_stage_declares_and_types_what_the_engine_calls():
    """Each stage of the list overrides the methods of its kind (``apply`` exactly when it says
    ``applies``), and every method it implements is fully annotated with types that resolve."""
    names = [st.name for st in pipeline.STAGES]
    assert len(set(names)) == len(names)
    for st in pipeline.STAGES:
        (kind,) = [k for k in _KIND_METHODS if isinstance(st, k)]
        required = list(_KIND_METHODS[kind])
        if isinstance(st, CorpusStage):
            overrides_apply = type(st).apply is not CorpusStage.apply
            assert overrides_apply == st.applies, f"{st.name}: applies={st.applies}, apply overridden={overrides_apply}"
            required += ["apply"] if st.applies else []
        for m in required:
            assert getattr(type(st), m) is not getattr(kind, m), f"{type(st).__name__} does not implement {m}"
        optional = [m for m, base in _OPTIONAL.items()
                    if isinstance(st, base) and getattr(type(st), m) is not getattr(base, m)]
        for m in required + optional:
            fn = getattr(type(st), m)
            sig = inspect.signature(fn)
            missing = [p for p in list(sig.parameters)[1:] if sig.parameters[p].annotation is inspect.Parameter.empty]
            assert not missing and sig.return_annotation is not inspect.Signature.empty, \
                f"{type(st).__name__}.{m} is not fully annotated (missing: {missing or 'return'})"
            typing.get_type_hints(fn)  # the annotations name real types
        # the class lives with its knowledge under stages/, not in the engine
        assert type(st).__module__.startswith("corpuspipe.stages."), type(st).__module__


@pytest.fixture(scope="module")
def releases(tmp_path_factory, raw_dir):
    """raw/ plus a near-copy of one seed (so both dedup levels have clusters), released twice: with
    the pipeline's stage list, and with CharCount added."""
    out: dict[str, Any] = {}
    cfg = PipelineConfig()
    root = tmp_path_factory.mktemp("registry")
    raw = root / "raw"
    shutil.copytree(raw_dir, raw)
    plant_copy(raw)
    for label, stages in (("default", pipeline.STAGES), ("char_count", _with_char_count())):
        build = pipeline.build(raw, cfg, root / label / ".work", stages=stages)
        rel = write_release(build, cfg, root / label, None, CREATED, build.wall).release_dir
        out[label] = (build, rel, json.loads((rel / "MANIFEST.json").read_text(encoding="utf-8")))
    return out


def test_a_stage_is_one_module_and_one_line(releases):
    """A shard stage defined here, added to a copy of the list: the engine fuses it into the pass of
    its neighbours, its counters and its own manifest entry reach MANIFEST.json, and the tables
    are byte-identical (it changes nothing)."""
    build, rel, manifest = releases["char_count"]
    _b0, _r0, base = releases["default"]
    plan = pipeline.plan(_with_char_count())
    assert [p.names for p in plan][1][-3:] == ["section", "char_count", "quality"]
    docs = pq.read_table(rel / "documents", columns=["char_count"])
    total = pc.sum(docs["char_count"]).as_py()
    assert manifest["stages"]["char_count"]["counts"] == {"chars": total, "documents": docs.num_rows}
    assert manifest["chars_per_document"] == round(total / docs.num_rows, 3)
    assert "char_count" not in base["stages"] and "chars_per_document" not in base
    assert manifest["table_digests"] == base["table_digests"]
    # every entry the default pipeline reports is still there, from its own stage
    for key in ("removals_per_rule", "normalize", "redactions"):
        assert manifest[key] == base[key] and key in base
    untimed = {k: v for k, v in base["dedup"].items() if k not in ("document", "section")}
    assert untimed["num_perm"] and {k: manifest["dedup"][k] for k in untimed} == untimed
    for level in ("document", "section"):
        assert manifest["dedup"][level]["items"] == base["dedup"][level]["items"] > 0
    per_level = base["stages"]["section"]["counts"]["per_level"]
    assert all(k.isdigit() for k in per_level) and sum(per_level.values()) == base["counts"]["sections"]


def test_two_stages_cannot_claim_one_manifest_entry(releases):
    build, _rel, _manifest = releases["char_count"]

    class Squatter(CharCount):
        name = "squatter"

        def report(self, counts: Mapping[str, int], fact: None, cfg: PipelineConfig) -> StageReport:
            return StageReport(entries={"dedup": {}})

    with pytest.raises(ValueError, match="dedup"):
        stage_report.stage_reports(dataclasses.replace(build, stages=(*build.stages, Squatter())), PipelineConfig())


def test_near_duplicates_hand_the_writer_files_not_names(releases):
    """``release_inputs``: the document- and section-level cluster files join their tables by ``id``;
    the pairs files, documents first, are exactly the release's ``duplicates`` rows."""
    build, rel, _manifest = releases["default"]
    (dedup,) = [st for st in build.stages if st.name == "dedup"]
    inputs = dedup.release_inputs(build.reduces["dedup"]["fact"])
    assert sorted(inputs.joins) == ["documents", "sections"]
    for table, id_col in (("documents", "doc_id"), ("sections", "section_id")):
        (path,) = inputs.joins[table]
        joined = pq.read_table(path)
        assert {"id", "cluster_id", "duplicate_of", "cluster_size"} <= set(joined.column_names)
        released = pq.read_table(rel / table)
        cols = [c for c in ("cluster_id", "duplicate_of", "cluster_size") if c in released.column_names]
        got = {r[id_col]: r for r in released.select([id_col, *cols]).to_pylist()}
        rows = joined.select(["id", *cols]).to_pylist()
        assert rows and all(got[r["id"]] == {id_col: r["id"], **{c: r[c] for c in cols}} for r in rows)
        # an id in no cluster file keeps the contract's default: its own cluster
        alone = set(got) - {r["id"] for r in rows}
        assert alone and all(got[i]["cluster_id"] == i and got[i]["duplicate_of"] is None for i in alone)
    assert list(inputs.rows) == ["duplicates"] and len(inputs.rows["duplicates"]) == 2
    rows = pa.concat_tables([pq.read_table(p) for p in inputs.rows["duplicates"]])
    assert rows.num_rows > 0
    assert rows.equals(pq.read_table(rel / "duplicates").select(rows.column_names))


def test_a_byte_identical_file_is_quarantined_by_its_stage(tmp_path, raw_dir):
    """IdenticalFiles decides, and its ``quarantine`` names the kept copy in the release."""
    raw = tmp_path / "raw"
    shutil.copytree(raw_dir, raw)
    first = sorted(p.name for p in raw.iterdir() if p.is_file())[0]
    shutil.copyfile(raw / first, raw / f"zz_copy_{first}")
    cfg = PipelineConfig()
    build = pipeline.build(raw, cfg, tmp_path / "out" / ".work")
    rel = write_release(build, cfg, tmp_path / "out", None, CREATED, build.wall).release_dir
    q = pq.read_table(rel / "quarantine").to_pylist()
    dup = [r for r in q if r["reason"] == "duplicate_file"]
    assert [r["path"] for r in dup] == [f"zz_copy_{first}"] and first in dup[0]["detail"]
    docs = pq.read_table(rel / "documents", columns=["source_path"])["source_path"].to_pylist()
    assert f"zz_copy_{first}" not in docs and first in docs
    manifest = json.loads((rel / "MANIFEST.json").read_text(encoding="utf-8"))
    assert manifest["stages"]["identical_files"]["counts"] == {"files_dropped": 1}
