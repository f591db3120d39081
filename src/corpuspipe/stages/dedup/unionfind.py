"""Disjoint sets over 0..n-1 (path halving + union by size): clusters from near-duplicate pairs."""

from __future__ import annotations

from collections.abc import Iterable


class UnionFind:
    """Small array-backed union-find; near-constant amortized find/union."""

    __slots__ = ("parent", "size")

    def __init__(self, n: int) -> None:
        self.parent = list(range(n))
        self.size = [1] * n

    def find(self, x: int) -> int:
        parent = self.parent
        while parent[x] != x:
            parent[x] = parent[parent[x]]  # path halving: iterative, no recursion limit
            x = parent[x]
        return x

    def union(self, a: int, b: int) -> int:
        """Merge the sets of a and b; returns the new root."""
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return ra
        if self.size[ra] < self.size[rb]:
            ra, rb = rb, ra
        self.parent[rb] = ra
        self.size[ra] += self.size[rb]
        return ra

    def union_all(self, pairs: Iterable[tuple[int, int]]) -> None:
        for a, b in pairs:
            self.union(a, b)

    def components(self) -> list[list[int]]:
        """All sets, each sorted, ordered by smallest member (deterministic)."""
        groups: dict[int, list[int]] = {}
        for x in range(len(self.parent)):
            groups.setdefault(self.find(x), []).append(x)
        return sorted(groups.values(), key=lambda g: g[0])
