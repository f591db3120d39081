"""The release writer's columnar joins and id checks equal the per-row definitions they replaced."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq

from corpuspipe.core.records import make_doc_id, section_id
from corpuspipe.release.tables import Join, section_ids


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
    cl = Join([str(path)], "documents")
    # a longer id sharing a clustered id's prefix must not match it
    query = members[::-1] + [members[3] + "-001", members[3][:-1]]
    got = cl.lookup(pa.array(query, pa.string()))
    cid, dup, size = got["cluster_id"], got["duplicate_of"], got["cluster_size"]
    ref = {r["id"]: r for r in table.to_pylist()}
    assert cid.to_pylist() == [ref[q]["cluster_id"] if q in ref else q for q in query]
    assert dup.to_pylist() == [ref[q]["duplicate_of"] if q in ref else None for q in query]
    assert size.to_pylist() == [ref[q]["cluster_size"] if q in ref else 1 for q in query]
    empty = Join([], "documents").lookup(pa.array(query[:3], pa.string()))
    assert empty["cluster_id"].to_pylist() == query[:3] and empty["duplicate_of"].null_count == 3
    assert empty["cluster_size"].to_pylist() == [1, 1, 1]
    # sections have no cluster_size: only the columns the table has are joined
    secs = Join([str(path)], "sections").lookup(pa.array(query[:3], pa.string()))
    assert set(secs) == {"cluster_id", "duplicate_of"}


def _check_ids(ids: list[str], clusters: list[str], parts: int = 2) -> list[str]:
    """validate.check_ids over the id arrays the parts' read-back returns, the rows cut into parts."""
    import numpy as np

    from corpuspipe.release.validate import _sorted_bytes, check_ids

    reports = []
    for k in range(parts):
        mine = list(range(k, len(ids), parts))
        named = [clusters[i] for i in mine if clusters[i] != ids[i]]
        reports.append({"ids": {"doc_id": _sorted_bytes([pa.array([ids[i] for i in mine], pa.string())]),
                                "cluster_id": np.unique(_sorted_bytes([pa.array(named, pa.string())]))}})
    return check_ids(reports)


def test_id_check_finds_a_repeated_id_and_a_cluster_without_its_document():
    ids = [make_doc_id("c" * 64, i) for i in range(10)]
    assert _check_ids(ids, [ids[0]] * 5 + ids[5:]) == []
    repeated = ids + [ids[4]]  # the copy lands in the other part: found across parts
    assert _check_ids(repeated, repeated) == [f"documents: doc_id {ids[4]} not unique"]
    gone = make_doc_id("d" * 64, 0)
    found = _check_ids(ids[1:], [gone] + ids[2:])
    assert found == [f"documents: cluster_id {gone} is not a document"]
    # an id of another width (not this pipeline's) is still checked exactly
    odd = ids[:3] + ["x-long-id-of-another-kind"] * 2
    assert _check_ids(odd, odd) == ["documents: doc_id x-long-id-of-another-kind not unique"]


def test_fixed_bytes_equals_per_value_padding():
    """``fixed_bytes`` equals NUL-padding each value to the width (cut when longer, with ``fits``
    false), for ids of mixed lengths, nulls, multi-byte text and a sliced (offset) array."""
    import numpy as np

    from corpuspipe.release.tables import fixed_bytes

    rng = np.random.default_rng(5)
    alphabet = list("0123456789abcdef:.") + ["节", "é"]
    values = ["".join(rng.choice(alphabet, size=int(k))) for k in rng.integers(0, 50, size=400)]
    values[::37] = [None] * len(values[::37])
    arr = pa.array(values, pa.string()).slice(3)  # an offset into the buffers
    for width in (1, 8, 36, 64):
        got, fits = fixed_bytes(arr, width)
        want = [(v or "").encode() for v in values[3:]]
        assert got.dtype == np.dtype(f"S{width}")
        assert [g for g in got] == [w[:width].rstrip(b"\0") for w in want]
        assert fits.tolist() == [len(w) <= width for w in want]
    chunked = pa.chunked_array([arr.slice(0, 100), arr.slice(100)])
    assert (fixed_bytes(chunked, 36)[0] == fixed_bytes(arr, 36)[0]).all()
    empty, fits = fixed_bytes(pa.array([], pa.string()), 4)
    assert empty.shape == (0,) and fits.shape == (0,)
