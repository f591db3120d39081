"""The dedup reduce as parallel steps: any worker runs any task, in any order, with the same bytes.

Issue 21: the reduce ran in one worker while the other core idled (59 s of a 107 s release at
100 MB).  Its phases are now steps of independent tasks (``stages/dedup/reduce.py``); these tests
run them on real report paragraphs (with edited and Traditional copies and a 500-copy family)
three ways -- one after the other, shuffled, and in a pool of worker processes -- and in one
step with the other level (``core.stage.together``), and require byte-identical pairs and clusters.
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from corpuspipe.config import DedupConfig
from corpuspipe.core.runner import ProcessRunner, Step, drive as drive_steps
from corpuspipe.core.stage import Tasks, drive, serial_tasks, together
from corpuspipe.stages.dedup import find_duplicates_steps, items_for_document, write_signatures
from corpuspipe.stages.dedup.minhash import DedupItem, min_length
from tests.stages.dedup.test_dedup import _family_corpus, gov_paragraphs, perturb

CFG = DedupConfig()


def _signature_files(tmp_path: Path, items: list[DedupItem], level: str, shards: int) -> list[tuple[str, int]]:
    out = []
    for k in range(shards):
        p = tmp_path / f"sig{k}.{level}.parquet"
        stats = write_signatures(items[k::shards], level, CFG, p)
        out.append((str(p), stats["band_rows"]))
    return out


def _section_items() -> list[DedupItem]:
    """Leaf sections of report paragraphs grouped into documents, some documents copied with edits."""
    from corpuspipe.core.records import SectionRow

    paras = gov_paragraphs(min_chars=200, limit=40)
    units: list[DedupItem] = []
    for d in range(12):
        body = "\n".join(paras[(d * 3 + k) % len(paras)] for k in range(4))
        if d >= 8:  # a copy of document d - 8 with edits
            body = perturb("\n".join(paras[((d - 8) * 3 + k) % len(paras)] for k in range(4)), 0.02, d)
        lines = body.split("\n")
        starts = np.cumsum([0] + [len(x) + 1 for x in lines[:-1]]).tolist()
        secs = [SectionRow(f"d{d:02d}", str(k + 1), 1, k + 1, f"{k + 1}.", "num", lines[k][:10], starts[k],
                           starts[k] + len(lines[k]), "") for k in range(len(lines))]
        _, u = items_for_document(f"d{d:02d}", body, secs, flags=[], script="simplified", cfg=CFG)
        units += u
    return units


def _run(sig, level: str, work: Path, run_step) -> tuple[bytes, bytes, dict]:
    out = drive(find_duplicates_steps(sig, level, CFG, work), run_step)
    return out.pairs_path.read_bytes(), out.clusters_path.read_bytes(), out.stats


def _shuffled(step: Tasks) -> list:
    """Every task of the step, in a random order (as workers finish), results put back in place."""
    order = list(range(len(step.args)))
    random.Random(len(order)).shuffle(order)
    got = {i: step.fn(*step.args[i]) for i in order}
    return [got[i] for i in range(len(order))]


@pytest.mark.parametrize("level", ["document", "section"])
def test_serial_shuffled_and_process_pool_give_the_same_bytes(tmp_path, level):
    items = _family_corpus()[:140] if level == "document" else _section_items()
    sig = _signature_files(tmp_path, items, level, shards=3)
    serial = _run(sig, level, tmp_path / "serial", serial_tasks)
    shuffled = _run(sig, level, tmp_path / "shuffled", _shuffled)
    with ProcessRunner(2) as pool:
        parallel = _run(sig, level, tmp_path / "pool", lambda t: [d.value for d in pool(Step(t))])
    assert serial[:2] == shuffled[:2] == parallel[:2]
    rows = pq.read_table(tmp_path / "serial" / f"{level}.duplicates.parquet").num_rows
    assert rows > 5 and serial[2]["clusters_with_duplicates"] > 0


def test_the_two_levels_in_one_step_give_each_levels_own_bytes(tmp_path):
    """``together`` puts both levels' tasks in each step; each level's output is what it is alone."""
    docs = _family_corpus()[:120]
    secs = _section_items()
    sig_d = _signature_files(tmp_path / "d", docs, "document", 2)
    sig_s = _signature_files(tmp_path / "s", secs, "section", 2)
    alone = [_run(sig_d, "document", tmp_path / "a", serial_tasks), _run(sig_s, "section", tmp_path / "b", serial_tasks)]
    labels: list[str] = []

    def record(step: Tasks) -> list:
        labels.append(step.label)
        return serial_tasks(step)

    both = drive(together(find_duplicates_steps(sig_d, "document", CFG, tmp_path / "c"),
                          find_duplicates_steps(sig_s, "section", CFG, tmp_path / "c")), record)
    got = [(o.pairs_path.read_bytes(), o.clusters_path.read_bytes()) for o in both]
    assert got == [a[:2] for a in alone]
    assert "dedup: bands (document) + bands (section)" in labels  # one step for both levels
    assert len(labels) < 2 * 9  # fewer steps than one level after the other


def test_every_task_is_bounded_by_its_share_not_the_corpus(tmp_path, monkeypatch):
    """Smaller partitions make more, smaller tasks and the same bytes (memory is set by config)."""
    from corpuspipe.stages.dedup import reduce

    items = _family_corpus()[:200]
    sig = _signature_files(tmp_path, items, "document", 4)
    big = _run(sig, "document", tmp_path / "big", serial_tasks)
    small_cfg = CFG.model_copy(update={"partition_rows": 1000})
    sizes: dict[str, int] = {}

    def count(step: Tasks) -> list:
        sizes[step.label] = max(sizes.get(step.label, 0), len(step.args))
        return serial_tasks(step)

    out = drive(find_duplicates_steps(sig, "document", small_cfg, tmp_path / "small"), count)
    assert (out.pairs_path.read_bytes(), out.clusters_path.read_bytes()) == big[:2]
    assert out.stats["partitions"] > big[2]["partitions"] and out.stats["ranges"] >= reduce.TASKS_PER_STEP
    assert sizes["dedup: gather (document)"] == out.stats["ranges"]
