"""Phase 8 of the dedup reduce: clusters from verified pairs, no chaining (the reduce's small glue).

Connected components of verified (whole-text) near-duplicate pairs are only *candidate* clusters.
In each, the best-ranked entity is the representative and every other member is verified against
it; members that are near-duplicates of it join its cluster, the rest split into components of
their own near-duplicate pairs and repeat (deterministic).  **Representative rank**: fewest flags,
then a Simplified original over a converted copy (``script == 'simplified'`` first), then the
longer text, then the smallest id.

Candidates whose two sides were already connected by verified near-duplicate star pairs waited
(``verify_task(kind="other")``): they cannot change the components.  They are scored only when both
sides are left over from one component after its representative took its members, so the split of
the remainder is the same as if every candidate had been scored first.

Everything here is arrays over the entities that appear in verified duplicate pairs (positions in
their sorted hashes): components by numpy hooking and pointer jumping, never a Python union-find
over adjacency sets (~250 bytes per edge as dicts of sets at the 1 GB crawl).  The scores a round
needs are asked of the range tasks (``Tasks``), so this glue holds pairs and labels, never text.
"""

from __future__ import annotations

from typing import Callable, Generator

import numpy as np

from corpuspipe.core.stage import Tasks


def components(n: int, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Connected components of the edges (u, v) over 0..n-1: each node's label is the smallest
    node of its component."""
    lab = np.arange(n, dtype=np.int64)
    while u.size:
        lu, lv = lab[u], lab[v]
        diff = lu != lv
        if not diff.any():
            break
        lu, lv = lu[diff], lv[diff]
        m = np.minimum(lu, lv)
        np.minimum.at(lab, lu, m)  # labels are roots (lab[r] == r) after the jumps below
        np.minimum.at(lab, lv, m)
        while True:
            nxt = lab[lab]
            if (nxt == lab).all():
                break
            lab = nxt
    return lab


def near_labels(n: int, edges: np.ndarray) -> np.ndarray:
    """entity position -> component label over ``edges``; -1 for an entity in none."""
    label = components(n, edges[:, 0], edges[:, 1])
    inside = np.zeros(n, bool)
    inside[edges.reshape(-1)] = True
    return np.where(inside, label, -1)


#: ``ask(kind, pairs_or_groups) -> Tasks`` and the collected answer: the glue's way to the range tasks
Asker = Callable[..., Generator[Tasks, list, np.ndarray]]


def cluster_rounds(n: int, edges: np.ndarray, rank: np.ndarray, relations_of: Asker,
                   near_among_deferred: Asker) -> Generator[Tasks, list, np.ndarray]:
    """entity position -> representative position (-1: in no cluster of >= 2).

    ``relations_of(pairs)`` yields the tasks that score (member, representative) position pairs and
    returns their relation codes; ``near_among_deferred(group)`` those that score the waiting
    candidates inside the groups (-1: none) and returns their near-duplicate edges as positions."""
    rep_of = np.full(max(1, n), -1, np.int64)
    if not edges.size:
        return rep_of
    group = np.full(n, -1, np.int64)  # members still to place: the rest (or component) they are in
    group[edges.reshape(-1)] = 0
    while True:
        # components of the near-duplicate edges inside each group, of >= 2 members
        u, v = edges[:, 0], edges[:, 1]
        keep = (group[u] >= 0) & (group[u] == group[v])
        lab = components(n, u[keep], v[keep])
        mem = np.flatnonzero(group >= 0)
        comp = lab[mem]
        mem = mem[np.lexsort((rank[mem], comp))]  # by component, then rank: first is the representative
        comp = lab[mem]
        start = np.concatenate(([True], comp[1:] != comp[:-1]))
        size = np.diff(np.append(np.flatnonzero(start), mem.size))
        multi = np.repeat(size >= 2, size)
        mem, comp, start = mem[multi], comp[multi], start[multi]
        if not mem.size:
            break
        rep = mem[np.flatnonzero(start)][np.cumsum(start) - 1]
        others = ~start
        against_rep = np.stack((mem[others], rep[others]), axis=1)
        near = (yield from relations_of(against_rep)) == 0
        joined = mem[others][near]
        rep_of[joined] = rep[others][near]
        rep_of[rep[others][near]] = rep[others][near]
        # the rest of each component: members not near-duplicates of its representative
        rest, rest_comp = mem[others][~near], comp[others][~near]
        group[:] = -1
        if not rest.size:
            break
        rs = np.concatenate(([True], rest_comp[1:] != rest_comp[:-1]))
        # rest_comp follows mem's order (by component), so equal labels are adjacent
        rsize = np.diff(np.append(np.flatnonzero(rs), rest.size))
        big = np.repeat(rsize > 1, rsize)
        group[rest[big]] = rest_comp[big]
        found = yield from near_among_deferred(group)
        if found.size:
            edges = np.concatenate((edges, found))
    return rep_of
