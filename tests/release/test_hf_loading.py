"""Issue 25 item 3: what Hugging Face ``datasets`` itself loads -- every config the release card lists,
and both export formats split into parts, one of which has no date at all.

Measured by a user before: ``load_dataset("json", data_dir=.../jsonl)`` on a multi-part export failed
"Couldn't cast array of type timestamp[s] to null" (one part had only empty dates: ``datasets`` types
each JSON file alone), and loading the release's ``quarantine`` config with 0 rows failed
"Instruction 'train' corresponds to no data!".  Parquet parts carry their types; JSON gets them from
the export's README front matter (its configs and features), and the card lists no empty table."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

datasets = pytest.importorskip("datasets")

from corpuspipe.release.export import Selection, export_release  # noqa: E402


@pytest.fixture(autouse=True)
def offline(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    datasets.disable_progress_bars()


def _front(text: str) -> dict:
    head, _, _ = text[4:].partition("\n---\n")
    return yaml.safe_load(head)


def test_every_config_of_the_release_card_loads(seed_release, tmp_path):
    card = _front((seed_release / "README.md").read_text(encoding="utf-8"))
    manifest = json.loads((seed_release / "MANIFEST.json").read_text(encoding="utf-8"))
    rows: dict[str, int] = {}
    for o in manifest["outputs"]:
        rows[o["table"]] = rows.get(o["table"], 0) + o["rows"]
    assert rows["quarantine"] == 0  # raw/ quarantines nothing: the empty table has no config
    listed = [c["config_name"] for c in card["configs"]]
    assert listed == ["documents", "duplicates", "edits", "sections"]
    for name in listed:
        ds = datasets.load_dataset(str(seed_release), name, split="train", cache_dir=str(tmp_path / "cache"))
        assert ds.num_rows == rows[name], name
    docs = datasets.load_dataset(str(seed_release), split="train", cache_dir=str(tmp_path / "cache"))  # the default
    assert docs.num_rows == rows["documents"]
    assert str(docs.features["date"].dtype) == "date32" and docs.features["crawled_at"].dtype.startswith("timestamp")
    assert sum(d is not None for d in docs["date"]) >= 1  # the one dated seed essay


def _export(seed_release, out: Path, level: str = "document"):
    """Three rows a part: the first part of the document export has no date at all."""
    res = export_release(seed_release, out, Selection(level=level), formats=("parquet", "jsonl"), shard_rows=3)
    assert len([f for f in res.files if f["path"].startswith("jsonl/")]) >= 2
    return res


def test_a_multi_part_export_loads_in_both_formats(seed_release, tmp_path):
    import pyarrow.parquet as pq

    out = tmp_path / "export"
    res = _export(seed_release, out)
    first = pq.read_table(out / "parquet" / "part-00000.parquet")
    assert first["date"].null_count == first.num_rows  # the part that types `date` as null when inferred
    assert {str(pq.read_schema(p).field("date").type) for p in (out / "parquet").glob("*.parquet")} == {"date32[day]"}
    cache = str(tmp_path / "cache")
    by_parquet = datasets.load_dataset("parquet", data_dir=str(out / "parquet"), split="train", cache_dir=cache)
    by_folder = datasets.load_dataset(str(out), split="train", cache_dir=cache)  # the JSON parts, typed
    features = datasets.Features._from_yaml_list(res.manifest["features"])
    by_json = datasets.load_dataset("json", data_dir=str(out / "jsonl"), features=features, split="train",
                                    cache_dir=cache)
    for ds in (by_parquet, by_json, by_folder):
        assert ds.num_rows == res.rows
        assert ds["id"] == by_parquet["id"]  # same rows, same order
        assert ds["date"] == by_parquet["date"] and sum(d is not None for d in ds["date"]) == 1
        assert str(ds.features["date"].dtype) == "date32"


def test_a_section_export_loads_from_its_folder(seed_release, tmp_path):
    out = tmp_path / "sections"
    res = _export(seed_release, out, level="section")
    cache = str(tmp_path / "cache")
    ds = datasets.load_dataset(str(out), split="train", cache_dir=cache)
    assert ds.num_rows == res.rows and str(ds.features["level"].dtype) == "int8"


def test_an_export_without_rows_lists_no_config(seed_release, tmp_path):
    out = tmp_path / "empty"
    res = export_release(seed_release, out, Selection(min_chars=10**9), formats=("jsonl",))
    assert res.rows == 0
    assert not (out / "README.md").read_text(encoding="utf-8").startswith("---")
