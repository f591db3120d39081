"""Issue 25: what Hugging Face ``datasets`` itself loads -- every config the release card lists, and
exports of documents and sections cut into parts so small that the first part has a column empty
throughout, loaded by the recipe of the export's own card.

Before: ``load_dataset("json", data_dir=.../jsonl)`` (or ``data_files=".../*.jsonl.zst"``) on such
an export failed "Couldn't cast array of type string to null".  ``datasets`` (5.2.0) reads nothing
beside the parts for the packaged ``json`` module and, without ``features=``, types the whole load by
the first table of the first part (``packaged_modules/json/json.py`` ``_split_generators``), so no
export file can fix it: the card now shows the loads that work (the folder, which reads the card;
``json`` with the card's features from ``load_dataset_builder``; ``parquet`` as it is) and this test
runs that recipe.  The JSON parts also wrote ``float32`` values rounded to 6 decimals, so the JSON
and Parquet loads of one export differed (a seed essay's ``trad_ratio``).  And loading the release's
``quarantine`` config with 0 rows failed "Instruction 'train' corresponds to no data!": the card
lists no empty table."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

datasets = pytest.importorskip("datasets")

from corpuspipe.release.export import EXPORT_PLACEHOLDER, Selection, export_release  # noqa: E402


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


def _cache_in(tmp_path: Path, monkeypatch) -> None:
    """The recipes call ``load_dataset`` without ``cache_dir``: keep their cache in the test's folder."""
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(datasets.config, "DOWNLOADED_DATASETS_PATH", str(tmp_path / "cache" / "downloads"))


def _card(out: Path) -> tuple[dict, str]:
    """The export card's front matter and its Python loading recipe (``EXPORT`` -> the folder)."""
    text = (out / "README.md").read_text(encoding="utf-8")
    code = text.split("```python\n", 1)[1].split("```", 1)[0]
    return _front(text), code.replace(EXPORT_PLACEHOLDER, str(out))


def _run_recipe(code: str) -> list[tuple[str, object]]:
    """Each ``ds = ...`` line of the recipe, run in one namespace as a reader would paste it, with
    the dataset it loaded."""
    ns: dict = {}
    loaded = []
    for line in code.splitlines():
        exec(line, ns)  # noqa: S102 -- the card's own code
        if line.startswith("ds ="):
            loaded.append((line, ns["ds"]))
    return loaded


def _null_in_first_part(out: Path) -> set[str]:
    """Columns that the first part holds only null (or empty lists) for and a later part does not:
    what types them ``null``/``list<null>`` when a reader infers the export's types from part 0."""
    import pyarrow.parquet as pq

    parts = sorted((out / "parquet").glob("*.parquet"))
    def empty(t, c):
        col = t[c]
        return col.null_count == t.num_rows or (str(col.type).startswith("list")
                                                and all(not v for v in col.to_pylist()))
    first = pq.read_table(parts[0])
    rest = [pq.read_table(p) for p in parts[1:]]
    return {c for c in first.column_names if empty(first, c) and any(not empty(t, c) for t in rest)}


def _first_difference(got: list[dict], want: list[dict]) -> tuple | None:
    """(row, column, got, want) of the first value that differs; None if the rows are equal."""
    assert len(got) == len(want)
    for i, (g, w) in enumerate(zip(got, want)):
        for c in w:
            if g.get(c) != w[c]:
                return i, c, g.get(c), w[c]
    return None


# parts of 1 and 3 documents, of 1 section: in each, the first part has a column that is empty
# throughout and filled later (checked below: `date`/`url`/`flags`, `heading`), the case that failed
@pytest.mark.parametrize("level,shard_rows", [("document", 1), ("document", 3), ("section", 1)])
def test_the_export_cards_recipe_loads_every_part_with_the_cards_features(seed_release, tmp_path, monkeypatch,
                                                                         level, shard_rows):
    import pyarrow.parquet as pq

    _cache_in(tmp_path, monkeypatch)
    out = tmp_path / "export"
    res = export_release(seed_release, out, Selection(level=level, exclude_flags=[]), shard_rows=shard_rows)
    n_parts = len([f for f in res.files if f["path"].startswith("jsonl/")])
    assert n_parts >= 3 and _null_in_first_part(out), "no part that types a column null when inferred"
    front, code = _card(out)
    card = datasets.Features._from_yaml_list(front["dataset_info"]["features"])
    assert front["dataset_info"]["features"] == res.manifest["features"]

    # why the recipe passes features: datasets types JSON parts by the first one (the card says so)
    with pytest.raises(datasets.exceptions.DatasetGenerationError):
        datasets.load_dataset("json", data_dir=str(out / "jsonl"), split="train")
    with pytest.raises(datasets.exceptions.DatasetGenerationError):
        datasets.load_dataset("json", data_files=str(out / "jsonl" / "*.jsonl.zst"), split="train")

    loaded = _run_recipe(code)
    assert [line.split("(", 1)[1].split(",", 1)[0] for line, _ in loaded] == \
        [f'"{out}"', '"json"', '"parquet"']  # the folder, JSON with features, Parquet as it is
    want = loaded[-1][1].to_list()
    assert [r["id"] for r in want] == pq.read_table(out / "parquet")["id"].to_pylist()  # the export's order
    for line, ds in loaded:
        assert ds.features == card, line  # float32, int8/int32, date32, timestamp, list<string>: as declared
        assert _first_difference(ds.to_list(), want) is None, line  # same rows, order and values
    plain = datasets.load_dataset("parquet", data_files=str(out / "parquet" / "*.parquet"), split="train")
    assert plain.features == card


@pytest.mark.parametrize("fmt", ["jsonl", "parquet"])
def test_a_one_format_exports_card_shows_only_its_loads(seed_release, tmp_path, monkeypatch, fmt):
    _cache_in(tmp_path, monkeypatch)
    out = tmp_path / "export"
    res = export_release(seed_release, out, Selection(), formats=(fmt,), shard_rows=3)
    front, code = _card(out)
    assert front["configs"][0]["data_files"][0]["path"].startswith(f"{fmt}/")
    loaded = _run_recipe(code)
    assert len(loaded) == (2 if fmt == "jsonl" else 1) and ("parquet" in code) == (fmt == "parquet")
    card = datasets.Features._from_yaml_list(front["dataset_info"]["features"])
    for line, ds in loaded:
        assert ds.features == card and ds.num_rows == res.rows, line
    assert "## Loading" not in (export_release(seed_release, tmp_path / "none", Selection(min_chars=10**9),
                                               formats=(fmt,)).out / "README.md").read_text(encoding="utf-8")


def test_an_export_without_rows_lists_no_config(seed_release, tmp_path):
    out = tmp_path / "empty"
    res = export_release(seed_release, out, Selection(min_chars=10**9), formats=("jsonl",))
    assert res.rows == 0
    assert not (out / "README.md").read_text(encoding="utf-8").startswith("---")
