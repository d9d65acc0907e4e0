"""One definition per predicate: the SQL in ``matchers.comparisons`` and its Python
twin in ``matchers.clustering`` give the same answer on many generated value pairs
(names with typos, nicknames, initials, middle names, swaps, missing surnames,
forenames seen once or often;
dates with one digit wrong, digits swapped, day and month transposed, a generation
apart), and rapidfuzz's string similarities equal DuckDB's."""

from __future__ import annotations

import random
from datetime import date, timedelta

import duckdb
import pandas as pd
import pytest

from matchers.clustering import dob_slip, jaro_winkler, names_compatible, within_one_edit
from matchers.comparisons import DOB_SLIP_SQL, FIRST_NAME_COMPATIBLE_SQL
from matchers.standardise import install_standardise_macros

N_PAIRS = 6000
LETTERS = "ABCDEHIJKLMNORSTY"


@pytest.fixture(scope="module")
def con() -> duckdb.DuckDBPyConnection:
    c = duckdb.connect()
    install_standardise_macros(c)
    yield c
    c.close()


def _typo(rng: random.Random, s: str) -> str:
    """``s`` with 0-3 random edits (substitution, insertion, deletion, swap)."""
    chars = list(s)
    for _ in range(rng.randint(0, 3)):
        i = rng.randrange(len(chars) + 1)
        op = rng.randrange(4)
        if op == 0 and i < len(chars):
            chars[i] = rng.choice(LETTERS)
        elif op == 1:
            chars.insert(i, rng.choice(LETTERS))
        elif op == 2 and len(chars) > 1 and i < len(chars):
            del chars[i]
        elif op == 3 and i < len(chars) - 1:
            chars[i], chars[i + 1] = chars[i + 1], chars[i]
    return "".join(chars) or s


def _name_pairs(rng: random.Random, names: list[str], surnames: list[str]) -> list[tuple]:
    pairs = []
    for _ in range(N_PAIRS):
        f1, s1 = rng.choice(names), rng.choice(surnames)
        kind = rng.randrange(6)
        if kind == 0:  # a typo (or several) of the same forename
            f2, s2 = _typo(rng, f1), s1
        elif kind == 1:  # an initial
            f2, s2 = f1[0], s1
        elif kind == 2:  # forename and surname swapped, perhaps mistyped
            f2, s2 = _typo(rng, s1), _typo(rng, f1)
        else:  # another name altogether (a nickname of one formal name by chance)
            f2, s2 = rng.choice(names), rng.choice(surnames + [s1])
        o1 = tuple(rng.sample(names, rng.randint(0, 1)))
        o2 = tuple([f1] if rng.random() < 0.1 else rng.sample(names, rng.randint(0, 1)))
        if kind == 5 and len(f1) > 3:  # a forename split by a space ("GABR IELLE")
            k = rng.randrange(1, len(f1))
            f1, o1, f2, s2 = f1[:k], (f1[k:], *o1), _typo(rng, f1), s1
        if rng.random() < 0.2:  # a missing surname, on either side
            s1, s2 = (None, s2) if rng.random() < 0.5 else (s1, None)
        pair = (f1, s1, list(o1), f2, s2, list(o2))
        pairs.append(pair if rng.random() < 0.5 else pair[3:] + pair[:3])
    return pairs


def test_forename_compatible_sql_and_python_agree(con: duckdb.DuckDBPyConnection) -> None:
    rng = random.Random(10)
    names = [r[0] for r in con.execute(
        "SELECT name FROM fl_name_groups ORDER BY name").fetchall() if len(r[0]) > 1]
    names = rng.sample(names, 300) + ["JACK", "JAMES", "JO", "A"]
    surnames = ["SMITH", "JONES", "TAYLOR", "BROWN", "JAMES", "THOMAS", "LEE", "KHAN", "OWEN"]
    pairs = _name_pairs(rng, names, surnames)
    # records per forename in the data (half of them seen once, as a typo would be);
    # the last pairs have no counts (too few records to tell)
    seen = {f: 1 if rng.random() < 0.5 else rng.randint(2, 9)
            for p in pairs for f in (p[0], p[3])}
    counted = len(pairs) * 3 // 4
    cols = ["first_name_l", "last_name_l", "other_names_l", "first_name_r", "last_name_r",
            "other_names_r"]
    frame = pd.DataFrame(pairs, columns=cols).reset_index(names="i")
    frame["first_name_seen_l"] = [seen[f] if i < counted else None
                                  for i, f in enumerate(frame.first_name_l)]
    frame["first_name_seen_r"] = [seen[f] if i < counted else None
                                  for i, f in enumerate(frame.first_name_r)]
    con.execute("CREATE OR REPLACE TEMP TABLE _np AS SELECT i, first_name_l, last_name_l, "
                "other_names_l::VARCHAR[] AS other_names_l, first_name_r, last_name_r, "
                "other_names_r::VARCHAR[] AS other_names_r, "
                "first_name_seen_l::BIGINT AS first_name_seen_l, "
                "first_name_seen_r::BIGINT AS first_name_seen_r FROM frame")
    got = con.execute(f"""
        WITH p AS (
            SELECT _np.*, coalesce(gl.name_groups, [first_name_l]) AS first_name_groups_l,
                   coalesce(gr.name_groups, [first_name_r]) AS first_name_groups_r
            FROM _np LEFT JOIN fl_name_groups gl ON gl.name = first_name_l
            LEFT JOIN fl_name_groups gr ON gr.name = first_name_r)
        SELECT i, {FIRST_NAME_COMPATIBLE_SQL} FROM p ORDER BY i""").fetchall()
    groups = {n: frozenset(g) for n, g in con.execute("SELECT * FROM fl_name_groups").fetchall()}
    sql = [v for _, v in got]
    py = [names_compatible((f1, s1 or "", tuple(o1)), (f2, s2 or "", tuple(o2)), groups,
                           seen if i < counted else None)
          for i, (f1, s1, o1, f2, s2, o2) in enumerate(pairs)]
    assert None not in sql  # two-valued: a missing surname never makes it NULL
    differ = [pairs[i] for i in range(len(pairs)) if sql[i] != py[i]]
    assert not differ, differ[:5]
    # the sample covers both answers, and the kinds of pair it was made for
    assert 0.2 < sum(py) / len(py) < 0.8


def test_dob_slip_sql_and_python_agree(con: duckdb.DuckDBPyConnection) -> None:
    rng = random.Random(11)
    pairs = []
    while len(pairs) < N_PAIRS:
        a = date(1940, 1, 1) + timedelta(days=rng.randrange(31000))
        s = a.isoformat()
        kind = rng.randrange(5)
        if kind == 0:  # one digit wrong
            i = rng.choice([0, 1, 2, 3, 5, 6, 8, 9])
            t = s[:i] + str(rng.randrange(10)) + s[i + 1:]
        elif kind == 1:  # two adjacent digits swapped
            i = rng.choice([0, 1, 2, 5, 8])
            t = s[:i] + s[i + 1] + s[i] + s[i + 2:]
        elif kind == 2:  # day and month transposed
            t = f"{s[:4]}-{s[8:10]}-{s[5:7]}"
        elif kind == 3:  # a generation apart, or a year wrong
            t = f"{a.year + rng.choice([-30, -10, -1, 1, 25])}{s[4:]}"
        else:
            t = (date(1940, 1, 1) + timedelta(days=rng.randrange(31000))).isoformat()
        try:
            date.fromisoformat(t)
        except ValueError:
            continue  # not a date: the pipeline reads it as missing
        pairs.append((s, t))
    frame = pd.DataFrame(pairs, columns=["a", "b"]).reset_index(names="i")  # noqa: F841
    con.execute("CREATE OR REPLACE TEMP TABLE _dp AS SELECT i, a::DATE AS dob_l, "
                "b::DATE AS dob_r FROM frame")
    sql = [v for _, v in con.execute(f"""
        SELECT i, {DOB_SLIP_SQL} FROM (SELECT i, dob_l, dob_r,
            strftime(dob_l, '%Y-%m-%d') AS dob_str_l, strftime(dob_r, '%Y-%m-%d') AS dob_str_r
            FROM _dp) ORDER BY i""").fetchall()]
    py = [dob_slip(a, b) for a, b in pairs]
    differ = [pairs[i] for i in range(len(pairs)) if sql[i] != py[i]]
    assert not differ, differ[:5]
    assert 0.2 < sum(py) / len(py) < 0.8


def test_rapidfuzz_similarities_equal_duckdbs(con: duckdb.DuckDBPyConnection) -> None:
    rng = random.Random(12)
    words = ["MARTHA", "DWAYNE", "DIXON", "JO", "A", "SHANE", "OLIVIA", "ABBEY", "MCDONALD"]
    pairs = [(w, _typo(rng, rng.choice(words))) for w in rng.choices(words, k=N_PAIRS)]
    rows = con.execute(
        "SELECT jaro_winkler_similarity(a, b), damerau_levenshtein(a, b) <= 1 "
        "FROM (SELECT unnest(?::VARCHAR[]) AS a, unnest(?::VARCHAR[]) AS b)",
        [[a for a, _ in pairs], [b for _, b in pairs]]).fetchall()
    for (a, b), (jw, one_edit) in zip(pairs, rows, strict=True):
        assert abs(jaro_winkler(a, b) - jw) < 1e-9, (a, b)
        assert within_one_edit(a, b) == one_edit, (a, b)


def test_a_rare_forename_mistyped_is_one_person_two_real_names_are_twins(
        con: duckdb.DuckDBPyConnection) -> None:
    """GABKEL (seen once) is GABRIEL mistyped; OLIVER and OLIVIA, each seen often, are
    twins; with too few records to count (NULL / None) neither fits."""
    seen = {"GABKEL": 1, "GABRIEL": 40, "OLIVER": 30, "OLIVIA": 25, "AMF": 1, "AMY": 50}
    cases = [("GABKEL", "GABRIEL", True), ("OLIVER", "OLIVIA", False), ("AMF", "AMY", True)]
    for a, b, want in cases:
        for counts in (seen, None):
            expect = want and counts is not None
            x, y = (a, "SMITH", ()), (b, "SMITH", ())
            assert names_compatible(x, y, {}, counts) is expect, (a, b, counts)
            got = con.execute(
                f"SELECT {FIRST_NAME_COMPATIBLE_SQL} FROM (SELECT ? AS first_name_l, "
                "? AS first_name_r, 'SMITH' AS last_name_l, 'SMITH' AS last_name_r, "
                "[]::VARCHAR[] AS other_names_l, []::VARCHAR[] AS other_names_r, "
                "[?] AS first_name_groups_l, [?] AS first_name_groups_r, "
                "?::BIGINT AS first_name_seen_l, ?::BIGINT AS first_name_seen_r)",
                [a, b, a, b, counts and counts[a], counts and counts[b]]).fetchall()[0][0]
            assert got is expect, (a, b, counts)
