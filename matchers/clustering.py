"""Constrained clustering: one id per real person, twins never merged.

Plain connected components lets one vague record (a police nominal with no
forename) chain two twins together. Here edges are taken strongest first and
a merge is refused when the two clusters hold contradicting evidence:
different values of one strong identifier, two different case-system people,
or, on the same date of birth, forenames that cannot be one person.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field


def jaro_winkler(a: str, b: str) -> float:
    """Jaro-Winkler similarity (same definition as DuckDB's)."""
    if a == b:
        return 1.0
    la, lb = len(a), len(b)
    if not la or not lb:
        return 0.0
    window = max(max(la, lb) // 2 - 1, 0)
    ma, mb = [False] * la, [False] * lb
    matches = 0
    for i, ch in enumerate(a):
        for j in range(max(0, i - window), min(lb, i + window + 1)):
            if not mb[j] and b[j] == ch:
                ma[i] = mb[j] = True
                matches += 1
                break
    if not matches:
        return 0.0
    sa = [c for c, m in zip(a, ma, strict=True) if m]
    sb = [c for c, m in zip(b, mb, strict=True) if m]
    trans = sum(x != y for x, y in zip(sa, sb, strict=True)) / 2
    jaro = (matches / la + matches / lb + (matches - trans) / matches) / 3
    prefix = 0
    for x, y in zip(a[:4], b[:4], strict=False):
        if x != y:
            break
        prefix += 1
    return jaro + prefix * 0.1 * (1 - jaro)


def forenames_compatible(a: str, b: str, groups: dict[str, frozenset[str]]) -> bool:
    """Could two standardised forenames belong to one person?"""
    if a == b:
        return True
    if len(a) == 1 or len(b) == 1:
        return a[0] == b[0]
    if groups.get(a, frozenset((a,))) & groups.get(b, frozenset((b,))):
        return True
    return jaro_winkler(a, b) >= 0.9


@dataclass
class _Cluster:
    ids: dict[str, set[str]] = field(default_factory=dict)
    cohort: set[str] = field(default_factory=set)
    forenames_by_dob: dict[str, set[tuple[str, str]]] = field(default_factory=dict)


@dataclass(frozen=True)
class Node:
    profile_id: int
    upn: str | None = None
    nhs_number: str | None = None
    ni_number: str | None = None
    cohort_ref: str | None = None
    dob: str | None = None
    first_name: str | None = None
    last_name: str | None = None


@dataclass(frozen=True)
class Edge:
    a: int
    b: int
    probability: float
    method: str


def cluster(
    nodes: Iterable[Node], edges: Iterable[Edge], groups: dict[str, frozenset[str]]
) -> tuple[dict[int, int], list[Edge], list[Edge]]:
    """Return (profile -> cluster root, accepted edges, refused edges).

    Deterministic edges (probability 1.0) come first; probabilistic ones by
    descending probability.
    """
    parent: dict[int, int] = {}
    info: dict[int, _Cluster] = {}
    for n in nodes:
        parent[n.profile_id] = n.profile_id
        c = _Cluster()
        for k in ("upn", "nhs_number", "ni_number"):
            v = getattr(n, k)
            c.ids[k] = {v} if v else set()
        if n.cohort_ref:
            c.cohort.add(n.cohort_ref)
        if n.dob and n.first_name:
            c.forenames_by_dob[n.dob] = {(n.first_name, n.last_name or "")}
        info[n.profile_id] = c

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def conflict(c1: _Cluster, c2: _Cluster) -> bool:
        for k, v1 in c1.ids.items():
            v2 = c2.ids[k]
            if v1 and v2 and not (v1 & v2):
                return True
        if c1.cohort and c2.cohort and c1.cohort != c2.cohort:
            return True
        for dob, names1 in c1.forenames_by_dob.items():
            names2 = c2.forenames_by_dob.get(dob)
            if names2 and not any(
                forenames_compatible(x[0], y[0], groups)
                or jaro_winkler(x[0], y[1]) >= 0.9
                or jaro_winkler(x[1], y[0]) >= 0.9
                for x in names1
                for y in names2
            ):
                return True
        return False

    accepted: list[Edge] = []
    refused: list[Edge] = []
    ordered = sorted(edges, key=lambda e: (e.method == "probabilistic", -e.probability, e.a, e.b))
    for e in ordered:
        ra, rb = find(e.a), find(e.b)
        if ra == rb:
            continue
        ca, cb = info[ra], info[rb]
        if e.method == "probabilistic" and conflict(ca, cb):
            refused.append(e)
            continue
        if len(ca.cohort) + sum(map(len, ca.ids.values())) < len(cb.cohort) + sum(
            map(len, cb.ids.values())
        ):
            ra, rb, ca, cb = rb, ra, cb, ca
        parent[rb] = ra
        for k in ca.ids:
            ca.ids[k] |= cb.ids[k]
        ca.cohort |= cb.cohort
        for dob, names in cb.forenames_by_dob.items():
            ca.forenames_by_dob.setdefault(dob, set()).update(names)
        del info[rb]
        accepted.append(e)
    return {p: find(p) for p in parent}, accepted, refused
