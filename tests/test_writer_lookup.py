"""The release writer's columnar joins equal the per-row definitions they replaced."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq

from corpuspipe.core.records import make_doc_id, section_id
from corpuspipe.release.writer import _Clusters, section_ids


def test_section_ids_equal_the_record_definition():
    docs = [make_doc_id("a" * 64, i) for i in range(4)]
    paths = ["0", "2.1", "12.1000.3", None, "1", "7.10"]
    doc_col = [docs[i % len(docs)] for i in range(len(paths))]
    got = section_ids(pa.array(doc_col, pa.string()), pa.array(paths, pa.string())).to_pylist()
    assert got == [section_id(d, p) if p else None for d, p in zip(doc_col, paths)]


def test_cluster_lookup_matches_a_dict_join(tmp_path):
    members = [make_doc_id("b" * 64, i) for i in range(50)]
    rep = members[7]
    rows = sorted(members[:20])  # clustered ids; the rest are their own cluster
    table = pa.table({
        "id": pa.array(rows, pa.string()),
        "cluster_id": pa.array([rep] * len(rows), pa.string()),
        "duplicate_of": pa.array([None if r == rep else rep for r in rows], pa.string()),
        "cluster_size": pa.array([len(rows)] * len(rows), pa.int32()),
    })
    path = tmp_path / "clusters.parquet"
    pq.write_table(table.take(pa.array(list(range(len(rows)))[::-1])), path)  # unsorted on disk
    cl = _Clusters(str(path))
    # a longer id sharing a clustered id's prefix must not match it
    query = members[::-1] + [members[3] + "-001", members[3][:-1]]
    cid, dup, size = cl.lookup(pa.array(query, pa.string()))
    ref = {r["id"]: r for r in table.to_pylist()}
    assert cid.to_pylist() == [ref[q]["cluster_id"] if q in ref else q for q in query]
    assert dup.to_pylist() == [ref[q]["duplicate_of"] if q in ref else None for q in query]
    assert size.to_pylist() == [ref[q]["cluster_size"] if q in ref else 1 for q in query]
    empty = _Clusters(None).lookup(pa.array(query[:3], pa.string()))
    assert empty[0].to_pylist() == query[:3] and empty[1].null_count == 3 and empty[2].to_pylist() == [1, 1, 1]


def _docs_file(tmp_path, ids, clusters):
    path = tmp_path / "documents.parquet"
    pq.write_table(pa.table({"doc_id": pa.array(ids, pa.string()), "cluster_id": pa.array(clusters, pa.string())}),
                   path, row_group_size=3)  # several row groups: the check must see across them
    return path


def test_id_check_finds_a_repeated_id_and_a_cluster_without_its_document(tmp_path):
    from corpuspipe.release.writer import _check_ids

    ids = [make_doc_id("c" * 64, i) for i in range(10)]
    assert _check_ids(_docs_file(tmp_path, ids, [ids[0]] * 5 + ids[5:])) == []
    repeated = ids + [ids[4]]
    assert _check_ids(_docs_file(tmp_path, repeated, repeated)) == [f"documents: doc_id {ids[4]} not unique"]
    gone = make_doc_id("d" * 64, 0)
    found = _check_ids(_docs_file(tmp_path, ids[1:], [gone] + ids[2:]))
    assert found == [f"documents: cluster_id {gone} is not a document"]
    # an id of another width (not this pipeline's) is still checked exactly
    odd = ids[:3] + ["x-long-id-of-another-kind"] * 2
    assert _check_ids(_docs_file(tmp_path, odd, odd)) == ["documents: doc_id x-long-id-of-another-kind not unique"]
