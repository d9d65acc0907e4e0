"""Constrained clustering: one id per real person, twins never merged.

Plain connected components lets one vague record (a police nominal with no
forename) chain two twins together. Here edges are taken strongest first and
a merge is refused when the two clusters hold contradicting evidence:
different values of one strong identifier, two different case-system people,
or, on the same date of birth, forenames that cannot be one person.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

from rapidfuzz.distance import DamerauLevenshtein, JaroWinkler


def jaro_winkler(a: str, b: str) -> float:
    """Jaro-Winkler similarity (rapidfuzz's: the implementation DuckDB's
    jaro_winkler_similarity is built on)."""
    return JaroWinkler.similarity(a, b)


def within_one_edit(a: str, b: str) -> bool:
    """Damerau-Levenshtein distance <= 1 (one substitution, insertion, deletion
    or swap of adjacent letters), as DuckDB's damerau_levenshtein."""
    return DamerauLevenshtein.distance(a, b, score_cutoff=1) <= 1


def forenames_compatible(a: str, b: str, groups: dict[str, frozenset[str]],
                         seen: dict[str, int] | None = None) -> bool:
    """Could two standardised forenames belong to one person (the same, a nickname
    of one formal name, a typo, an initial, a rare string mistyped from the
    other)? The forename terms of ``comparisons.FIRST_NAME_COMPATIBLE_SQL``;
    ``seen`` counts each forename's records (None: too few records to tell)."""
    return (
        a == b
        or bool(groups.get(a, frozenset((a,))) & groups.get(b, frozenset((b,))))
        or jaro_winkler(a, b) >= 0.9
        or (min(len(a), len(b)) >= 4 and within_one_edit(a, b))
        or ((len(a) == 1 or len(b) == 1) and a[:1] == b[:1])
        or rare_typo(a, b, seen)
    )


def rare_typo(a: str, b: str, seen: dict[str, int] | None) -> bool:
    """``comparisons.RARE_TYPO_SQL``: one forename seen once in the data, with the
    other's initial, within two edits of it (one under five letters)."""
    if seen is None or min(seen.get(a, 0), seen.get(b, 0)) != 1 or a[:1] != b[:1]:
        return False
    limit = 2 if min(len(a), len(b)) >= 5 else 1
    return DamerauLevenshtein.distance(a, b, score_cutoff=limit) <= limit


# (forename, surname, other given names) of one record
Name = tuple[str, str, tuple[str, ...]]


def split_forename(x: Name, y: Name) -> bool:
    """One side's forename and middle names joined are the other's forename (one
    edit allowed): ``comparisons.SPLIT_FORENAME_SQL``."""
    return (bool(x[2]) and within_one_edit(x[0] + "".join(x[2]), y[0])) or (
        bool(y[2]) and within_one_edit(y[0] + "".join(y[2]), x[0]))


def names_compatible(x: Name, y: Name, groups: dict[str, frozenset[str]],
                     seen: dict[str, int] | None = None) -> bool:
    """Could two records' names be one person's (nickname, typo, initial, a middle
    name used as forename, forename and surname swapped)? The Python twin of
    ``comparisons.FIRST_NAME_COMPATIBLE_SQL`` (a missing surname is ``""``),
    checked against it by ``tests/test_predicates.py``."""
    return (
        forenames_compatible(x[0], y[0], groups, seen)
        or x[0] in y[2]
        or y[0] in x[2]
        or split_forename(x, y)
        or jaro_winkler(x[0], y[1]) >= 0.9
        or jaro_winkler(y[0], x[1]) >= 0.9
    )


def names_conflict(n1: set[Name], n2: set[Name], groups: dict[str, frozenset[str]],
                   seen: dict[str, int] | None = None) -> bool:
    """Two sets of names seen on one date of birth that cannot be one person.

    Full forenames decide when both sides have one: an initial ("J") fits both
    twins, so it must not be the bridge that lets JACK join JAMES.
    """
    full1 = {x for x in n1 if len(x[0]) > 1}
    full2 = {y for y in n2 if len(y[0]) > 1}
    if full1 and full2:
        n1, n2 = full1, full2
    return not any(names_compatible(x, y, groups, seen) for x in n1 for y in n2)


class _Cluster:
    """What a cluster knows that a merge could contradict (sparse: only what is
    present, so that a county's worth of singletons stays cheap)."""

    __slots__ = ("ids", "cohort", "dobs", "forenames_by_dob")

    def __init__(self) -> None:
        self.ids: dict[str, set[str]] = {}
        self.cohort: set[str] = set()
        self.dobs: set[str] = set()
        self.forenames_by_dob: dict[str, set[Name]] = {}

    def size(self) -> int:
        return len(self.cohort) + sum(map(len, self.ids.values()))


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
    other_names: tuple[str, ...] = ()


@dataclass(frozen=True)
class Edge:
    a: int
    b: int
    probability: float
    method: str


# A probabilistic edge to a second, conflicting person counts as a rival of the
# edge taken when it is within this many bits of match weight (a likelihood
# ratio of 8): the record fits both about as well, so it is given to neither.
AMBIGUITY_MARGIN = 3.0
# Dates of birth this far apart are two people, unless one is a typing slip of
# the other (one digit, or day and month swapped).
GENERATION_DAYS = 3652


def _weight(p: float) -> float:
    p = min(max(p, 1e-12), 1 - 1e-12)
    return math.log2(p / (1 - p))


def dob_slip(a: str, b: str) -> bool:
    """Could one ISO date be the other mistyped (one digit, two adjacent digits
    swapped, or day and month transposed)? The Python twin of
    ``comparisons.DOB_SLIP_SQL``, checked against it by ``tests/test_predicates.py``."""
    if len(a) != len(b):
        return False
    diff = [i for i, (x, y) in enumerate(zip(a, b, strict=True)) if x != y]
    if len(diff) <= 1:
        return True
    if len(diff) == 2 and diff[1] == diff[0] + 1 and a[diff[0]] == b[diff[1]] \
            and a[diff[1]] == b[diff[0]]:
        return True
    return a[:4] == b[:4] and a[5:7] == b[8:10] and a[8:10] == b[5:7]


def dobs_conflict(d1: set[str], d2: set[str]) -> bool:
    """Two sets of dates of birth with no pair that could be one person's."""
    for a in d1:
        for b in d2:
            if a == b or dob_slip(a, b):
                return False
            try:
                gap = abs((date.fromisoformat(a) - date.fromisoformat(b)).days)
            except ValueError:
                return False
            if gap < GENERATION_DAYS:
                return False
    return True


def cluster(
    nodes: Iterable[Node], edges: Iterable[Edge], groups: dict[str, frozenset[str]],
    seen: dict[str, int] | None = None,
) -> tuple[dict[int, int], list[Edge], list[Edge]]:
    """Return (profile -> cluster root, accepted edges, refused edges).

    Deterministic edges (probability 1.0) come first; probabilistic ones by
    descending probability; a merge is refused when the clusters conflict.
    A profile whose probabilistic edges reach two conflicting people about as
    strongly (``AMBIGUITY_MARGIN``) is ambiguous: a second pass clusters without
    its probabilistic edges, which are returned among the refused ones with
    method ``ambiguous``. ``seen`` (records per forename, from a table of at least
    ``comparisons.RARE_NAME_MIN_RECORDS``) lets a rare mistyped forename fit.
    """
    nodes = list(nodes)
    edges = sorted(edges, key=lambda e: (e.method == "probabilistic", -e.probability, e.a, e.b))
    roots, accepted, refused, rivals = _cluster_pass(nodes, edges, groups, seen)
    best: dict[int, float] = {}
    for e in accepted:
        if e.method == "probabilistic":
            for x in (e.a, e.b):
                best[x] = max(best.get(x, -math.inf), _weight(e.probability))
    ambiguous = {
        x for x, w in rivals if x in best and best[x] - w < AMBIGUITY_MARGIN
    }
    if not ambiguous:
        return roots, accepted, refused
    keep, dropped = [], []
    for e in edges:
        if e.method == "probabilistic" and (e.a in ambiguous or e.b in ambiguous):
            dropped.append(Edge(e.a, e.b, e.probability, "ambiguous"))
        else:
            keep.append(e)
    roots, accepted, refused, _ = _cluster_pass(nodes, keep, groups, seen)
    return roots, accepted, refused + dropped


def _node_info(n: Node) -> _Cluster:
    c = _Cluster()
    if n.upn:
        c.ids["upn"] = {n.upn}
    if n.nhs_number:
        c.ids["nhs_number"] = {n.nhs_number}
    if n.ni_number:
        c.ids["ni_number"] = {n.ni_number}
    if n.cohort_ref:
        c.cohort.add(n.cohort_ref)
    if n.dob:
        c.dobs.add(n.dob)
        if n.first_name:
            c.forenames_by_dob[n.dob] = {
                (n.first_name, n.last_name or "", tuple(n.other_names or ()))
            }
    return c


def _cluster_pass(
    nodes: list[Node], ordered: list[Edge], groups: dict[str, frozenset[str]],
    seen: dict[str, int] | None = None,
) -> tuple[dict[int, int], list[Edge], list[Edge], list[tuple[int, float]]]:
    """One greedy pass. ``rivals`` lists (profile, weight) for each refused edge
    whose profile would have fitted the other cluster on its own: the refusal
    came from what its cluster had already taken, so the profile is torn
    between two people."""
    parent: dict[int, int] = {}
    info: dict[int, _Cluster] = {}
    own: dict[int, Node] = {n.profile_id: n for n in nodes}
    for n in nodes:
        parent[n.profile_id] = n.profile_id

    def get(root: int) -> _Cluster:
        c = info.get(root)
        if c is None:
            c = info[root] = _node_info(own[root])
        return c

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def conflict(c1: _Cluster, c2: _Cluster) -> bool:
        for k, v1 in c1.ids.items():
            v2 = c2.ids.get(k)
            if v2 and not (v1 & v2):
                return True
        if c1.cohort and c2.cohort and c1.cohort != c2.cohort:
            return True
        for dob, names1 in c1.forenames_by_dob.items():
            names2 = c2.forenames_by_dob.get(dob)
            if names2 and names_conflict(names1, names2, groups, seen):
                return True
        return bool(c1.dobs and c2.dobs and dobs_conflict(c1.dobs, c2.dobs))

    accepted: list[Edge] = []
    refused: list[Edge] = []
    rivals: list[tuple[int, float]] = []
    for e in ordered:
        ra, rb = find(e.a), find(e.b)
        if ra == rb:
            continue
        ca, cb = get(ra), get(rb)
        if e.method == "probabilistic" and conflict(ca, cb):
            refused.append(e)
            for x, other in ((e.a, cb), (e.b, ca)):
                if not conflict(_node_info(own[x]), other):
                    rivals.append((x, _weight(e.probability)))
            continue
        if ca.size() < cb.size():
            ra, rb, ca, cb = rb, ra, cb, ca
        parent[rb] = ra
        for k, v in cb.ids.items():
            ca.ids.setdefault(k, set()).update(v)
        ca.cohort |= cb.cohort
        ca.dobs |= cb.dobs
        for dob, names in cb.forenames_by_dob.items():
            ca.forenames_by_dob.setdefault(dob, set()).update(names)
        del info[rb]
        accepted.append(e)
    return {p: find(p) for p in parent}, accepted, refused, rivals


def components(edges: Iterable[tuple[int, int]]) -> dict[int, int]:
    """Connected components of a graph given by its edges: each node -> the lowest
    node of its component (a label that is the same whatever order edges come in)."""
    parent: dict[int, int] = {}

    def find(x: int) -> int:
        root = x
        while parent[root] != root:
            root = parent[root]
        while parent[x] != root:
            parent[x], x = root, parent[x]
        return root

    for a, b in edges:
        parent.setdefault(a, a)
        parent.setdefault(b, b)
        ra, rb = find(a), find(b)
        if ra != rb:
            if rb < ra:
                ra, rb = rb, ra
            parent[rb] = ra       # the lower root stays: it is the component's lowest node
    return {x: find(x) for x in parent}
