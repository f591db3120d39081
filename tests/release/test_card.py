from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml
from tests.helpers.tiny_release import make_tables, write_release

from corpuspipe.release.card import size_category, write_card, write_croissant
from corpuspipe.config import PipelineConfig


@pytest.fixture
def release(tmp_path: Path) -> Path:
    return write_release(tmp_path / "releases", make_tables(n_docs=5), "1.0.0")


def _header(text: str) -> dict:
    assert text.startswith("---\n")
    head, _, _ = text[4:].partition("\n---\n")
    return yaml.safe_load(head)


def test_card_header_follows_the_hub_format(release):
    text = write_card(release).read_text(encoding="utf-8")
    h = _header(text)
    assert h["license"] == "other" and h["language"] == ["zh"]
    assert h["pretty_name"] == PipelineConfig().release.pretty_name
    assert h["size_categories"] == ["n<1K"] and h["task_categories"] == ["text-generation"]
    configs = {c["config_name"]: c for c in h["configs"]}
    assert set(configs) == {"documents", "sections", "duplicates", "edits", "quarantine"}
    assert configs["documents"]["default"] is True and h["configs"][0]["config_name"] == "documents"
    for name, c in configs.items():  # one glob loads the table's parts
        assert c["data_files"] == [{"split": "train", "path": f"{name}/*.parquet"}]
        assert sorted(p.name for p in release.glob(c["data_files"][0]["path"]))[0] == "part-00000.parquet"
    assert len(list(release.glob("documents/*.parquet"))) == 2
    infos = {i["config_name"]: i for i in h["dataset_info"]}
    for name, info in infos.items():
        parts = sorted(release.glob(f"{name}/*.parquet"))
        assert [f["name"] for f in info["features"]] == pq.read_schema(parts[0]).names
        assert info["splits"][0]["num_examples"] == sum(pq.read_metadata(p).num_rows for p in parts)
    feats = {f["name"]: f for f in infos["documents"]["features"]}
    assert feats["flags"] == {"name": "flags", "sequence": "string"}
    assert feats["trad_ratio"]["dtype"] == "float32" and feats["char_count"]["dtype"] == "int32"
    assert {f["name"]: f for f in infos["sections"]["features"]}["level"]["dtype"] == "int8"


def test_card_body_states_counts_caveats_and_the_dedup_view(release):
    text = write_card(release).read_text(encoding="utf-8")
    assert "WHERE duplicate_of IS NULL" in text
    assert "5 Chinese essays (4 after removing near-duplicates)" in text
    assert "4 clusters, 1 with more than one member; `duplicate_of` names the kept document for 1 other document." in text
    assert "**Mojibake**: 1 document flagged `mojibake`" in text
    assert "**Quarantine**: 1 input files or lines were not converted (binary: 1)" in text
    assert "`watermark.source_bracket`: 3" in text
    assert "16 bands × 8 rows" in text
    assert "- traditional: 1" in text
    manifest = json.loads((release / "MANIFEST.json").read_text())
    assert manifest["content_hash"] in text


def test_license_name_appears_only_for_other_licenses(tmp_path):
    cfg = PipelineConfig.model_validate({"release": {"license_name": "essay-terms", "license_link": "LICENSE.md",
                                                     "pretty_name": "作文 <测试>"}})
    r = write_release(tmp_path, make_tables(), "1.0.0", config=cfg)
    h = _header(write_card(r).read_text(encoding="utf-8"))
    assert (h["license_name"], h["license_link"], h["pretty_name"]) == ("essay-terms", "LICENSE.md", "作文 <测试>")
    cfg2 = PipelineConfig.model_validate({"release": {"license": "cc-by-4.0", "license_name": "ignored"}})
    r2 = write_release(tmp_path / "b", make_tables(), "1.0.0", config=cfg2)
    h2 = _header(write_card(r2).read_text(encoding="utf-8"))
    assert h2["license"] == "cc-by-4.0" and "license_name" not in h2


def test_size_categories():
    assert [size_category(n) for n in (0, 999, 1000, 99_999, 100_000, 5_000_000)] == [
        "n<1K", "n<1K", "1K<n<10K", "10K<n<100K", "100K<n<1M", "1M<n<10M"]


def test_croissant_validates_and_loads_records(release):
    import mlcroissant as mlc

    path = write_croissant(release)
    jsonld = json.loads(path.read_text(encoding="utf-8"))
    manifest = json.loads((release / "MANIFEST.json").read_text())
    files = {d["@id"]: d for d in jsonld["distribution"] if d["@type"] == "cr:FileObject"}
    assert {o["path"]: o["sha256"] for o in manifest["outputs"]} == {k: v["sha256"] for k, v in files.items()}
    assert all(d["contentUrl"] == k and d["encodingFormat"] == "application/x-parquet" for k, d in files.items())
    sets = {d["@id"]: d for d in jsonld["distribution"] if d["@type"] == "cr:FileSet"}
    assert sets["documents-parts"]["includes"] == "documents/*.parquet"
    rs = {r["@id"]: r for r in jsonld["recordSet"]}
    assert [f["@id"] for f in rs["documents"]["field"]] == [
        f"documents/{n}" for n in pq.read_schema(release / "documents" / "part-00000.parquet").names]

    cli = Path(sys.executable).with_name("mlcroissant")
    proc = subprocess.run([str(cli), "validate", "--jsonld", str(path)], capture_output=True, text=True,
                          cwd=release)
    assert proc.returncode == 0, proc.stderr[-2000:]

    ds = mlc.Dataset(jsonld=str(path))
    records = []
    for rec in ds.records("documents"):
        records.append(rec)
        if len(records) == 2:
            break
    assert [r["documents/doc_id"] for r in records] == [b"d0000", b"d0001"]
    assert records[0]["documents/char_count"] == len(make_tables(n_docs=5)["documents"]["text"][0].as_py())
    flagged = [r for r in ds.records("documents") if r["documents/flags"]]
    assert [r["documents/doc_id"] for r in flagged] == [b"d0004"]
    assert [v for v in flagged[0]["documents/flags"]] == [b"mojibake"]
    levels = sorted({int(r["sections/level"]) for r in ds.records("sections")})
    assert levels == [1, 2]


def test_a_table_without_rows_gets_no_config(tmp_path):
    """``load_dataset`` of a config whose files hold no row fails ("corresponds to no data"): the card
    lists only tables with rows, and says why the others are absent."""
    tables = make_tables()
    tables["quarantine"] = tables["quarantine"].slice(0, 0)
    r = write_release(tmp_path, tables, "1.0.0")
    text = write_card(r).read_text(encoding="utf-8")
    h = _header(text)
    assert "quarantine" not in {c["config_name"] for c in h["configs"]}
    assert "quarantine" not in {i["config_name"] for i in h["dataset_info"]}
    assert "(no rows: no config)" in text


def test_seed_card_and_changelog_have_no_placeholders_or_json(seed_release):
    from corpuspipe.core import schemas

    card = (seed_release / "README.md").read_text(encoding="utf-8")
    body = card.split("\n---\n", 1)[1]
    for bad in ("—)", "initial after", "{\"", "': ", "| None", ": None", " ? ", "(?"):
        assert bad not in body, bad
    assert "(first release)" in card
    for name in schemas.SIGNAL_COLUMNS:
        assert f"| `{name}` |" in card
    assert "best_containment" in card and "truncated" in card
    changelog = (seed_release / "CHANGELOG.md").read_text(encoding="utf-8")
    assert "First release" in changelog and "`documents`: 10 rows" in changelog
    feats = {f["name"]: f for i in _header(card)["dataset_info"] if i["config_name"] == "documents"
             for f in i["features"]}
    assert feats["date"]["dtype"] == "date32" and feats["crawled_at"]["dtype"] == "timestamp[ms, tz=UTC]"
