"""Union-find against a naive BFS connected-components oracle."""

from __future__ import annotations

from collections import deque

from hypothesis import given, settings
from hypothesis import strategies as st

from corpuspipe.stages.dedup.unionfind import UnionFind


def bfs_components(n: int, edges: list[tuple[int, int]]) -> list[list[int]]:
    adj: list[list[int]] = [[] for _ in range(n)]
    for a, b in edges:
        adj[a].append(b)
        adj[b].append(a)
    seen = [False] * n
    comps = []
    for s in range(n):
        if seen[s]:
            continue
        seen[s] = True
        comp, q = [], deque([s])
        while q:
            x = q.popleft()
            comp.append(x)
            for y in adj[x]:
                if not seen[y]:
                    seen[y] = True
                    q.append(y)
        comps.append(sorted(comp))
    return sorted(comps, key=lambda c: c[0])


@st.composite
def graphs(draw):
    n = draw(st.integers(1, 40))
    edges = draw(st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)), max_size=80))
    return n, edges


@given(graphs())
@settings(max_examples=300, deadline=None)
def test_components_match_bfs(g):
    n, edges = g
    uf = UnionFind(n)
    uf.union_all(edges)
    assert uf.components() == bfs_components(n, edges)
    # find agrees with component membership and sizes are right at the roots
    for comp in uf.components():
        roots = {uf.find(x) for x in comp}
        assert len(roots) == 1
        assert uf.size[roots.pop()] == len(comp)


@given(graphs(), st.randoms(use_true_random=False))
@settings(max_examples=100, deadline=None)
def test_edge_order_does_not_matter(g, rnd):
    n, edges = g
    shuffled = list(edges)
    rnd.shuffle(shuffled)
    a, b = UnionFind(n), UnionFind(n)
    a.union_all(edges)
    b.union_all([(y, x) for x, y in shuffled])
    assert a.components() == b.components()


def test_long_chain_is_flat_after_find():
    n = 50_000  # deep chain: an iterative find must not hit the recursion limit
    uf = UnionFind(n)
    for i in range(n - 1):
        uf.parent[i] = i + 1  # worst case built by hand
    root = uf.find(0)
    assert root == n - 1
    # path halving shortened the path from 0 considerably
    depth, x = 0, 0
    while uf.parent[x] != x:
        x = uf.parent[x]
        depth += 1
    assert depth <= n // 2


def test_union_returns_root_and_is_idempotent():
    uf = UnionFind(4)
    r = uf.union(0, 1)
    assert r in (0, 1) and uf.find(0) == uf.find(1) == r
    assert uf.union(1, 0) == r
    assert uf.components() == [[0, 1], [2], [3]]
