"""Deterministic links between person profiles on strong identifiers.

A profile is one distinct standardised appearance of a source person (the
same pupil in six attendance terms is one profile). Edges are drawn as stars
(every profile to the lowest profile sharing the key) so a key shared by many
records costs n edges, not n squared. An identifier edge also needs one of
DOB, surname or forename to agree: a valid-looking identifier keyed against
the wrong person must not carry a link on its own.
"""

from __future__ import annotations

import duckdb

# (method, key expression over profiles p) in order of trust.
ID_KEYS = [
    ("upn", "p.upn"),
    ("nhs_number", "p.nhs_number"),
    ("ni_number", "p.ni_number"),
]

_SANITY = """(a.dob = b.dob OR a.last_name = b.last_name OR a.first_name = b.first_name
    OR a.dob IS NULL OR b.dob IS NULL)"""

# DWP returned a record for the person the council sent (match_ref = person_ref);
# it is that person only when its DOB, names and NI number agree with the case system.
# DWP's person within a return is (match_ref, NI number): rows sharing both are one
# person (a source_ref edge); rows without an NI number are each checked on their own,
# since DWP may have returned two people under one reference.
DWP_VERIFIED = """(
    (d.dob = c.dob
     AND (d.last_name = c.last_name OR jaro_winkler_similarity(d.last_name, c.last_name) >= 0.9
          OR list_has_any(d.last_name_tokens, c.last_name_tokens))
     AND (d.first_name = c.first_name OR list_has_any(d.first_name_groups, c.first_name_groups)
          OR jaro_winkler_similarity(d.first_name, c.first_name) >= 0.9)
     AND (d.ni_number IS NULL OR c.ni_number IS NULL OR d.ni_number = c.ni_number))
    OR (d.first_name IS NULL AND d.last_name IS NULL AND d.ni_number = c.ni_number)
)"""


def deterministic_edges_sql(profiles: str) -> str:
    """SQL of edges (profile_l, profile_r, method) from the profiles table."""
    parts = [
        f"""SELECT min(profile_id) OVER (PARTITION BY source_system, source_person_id)
                   AS profile_l, profile_id AS profile_r, 'source_ref' AS method, 5 AS priority
            FROM {profiles} WHERE source_person_id IS NOT NULL
              AND NOT (source_system = 'dwp' AND ni_number IS NULL)"""
    ]
    for prio, (method, key) in enumerate(ID_KEYS, start=1):
        parts.append(
            f"""SELECT a.profile_id, b.profile_id, '{method}', {prio}
            FROM (SELECT p.*, min(p.profile_id) OVER (PARTITION BY {key}) AS centre
                  FROM {profiles} p WHERE {key} IS NOT NULL) b
            JOIN {profiles} a ON a.profile_id = b.centre
            WHERE {_SANITY}"""
        )
    parts.append(
        f"""SELECT c.profile_id, d.profile_id, 'dwp_match_ref', 4
        FROM {profiles} d JOIN {profiles} c
          ON c.source_system = 'cohort' AND d.source_system = 'dwp'
         AND d.match_ref = c.source_person_id
        WHERE {DWP_VERIFIED}"""
    )
    union = "\nUNION ALL\n".join(parts)
    return f"""SELECT least(profile_l, profile_r) AS profile_l,
                      greatest(profile_l, profile_r) AS profile_r,
                      arg_min(method, priority) AS method
               FROM ({union}) WHERE profile_l <> profile_r GROUP BY ALL"""


def deterministic_edges(con: duckdb.DuckDBPyConnection, profiles: str, out: str) -> int:
    con.execute(f"CREATE OR REPLACE TEMP TABLE {out} AS {deterministic_edges_sql(profiles)}")
    return con.execute(f"SELECT count(*) FROM {out}").fetchall()[0][0]
