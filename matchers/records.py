"""Collect every person-bearing staging extract into the linkage tables.

Which column is each source's own person reference, and which columns make a
record's key, is data (``EXTRACTS``) rather than code: a new extract is one
more entry. A police nominal takes its incident's postcode as a place the
person was seen (``postcode_is_location``); a DWP row keeps the reference the
council sent (``match_ref``) apart from DWP's own person (reference + NI).
"""

from __future__ import annotations

import duckdb
from pydantic import BaseModel

from matchers.standardise import install_standardise_macros, standardise_sql

PERSON_COLUMNS = (
    "first_name", "middle_names", "last_name", "dob", "sex", "postcode", "upn", "nhs_number",
    "ni_number",
)


class ExtractSpec(BaseModel):
    """How one extract names its people."""

    system: str
    person_ref: str
    key: list[str]


EXTRACTS: dict[str, ExtractSpec] = {
    "cohort_members": ExtractSpec(system="cohort", person_ref="person_ref", key=["person_ref"]),
    "yot_offences": ExtractSpec(system="yot", person_ref="yot_person_id", key=["offence_id"]),
    "police_nominals": ExtractSpec(
        system="police", person_ref="nominal_id", key=["incident_ref", "nominal_id"]
    ),
    "school_attendance": ExtractSpec(
        system="school", person_ref="upn", key=["upn", "academic_year", "term"]
    ),
    "school_exclusions": ExtractSpec(
        system="school", person_ref="upn", key=["upn", "start_date", "category"]
    ),
    "dwp_benefits": ExtractSpec(
        system="dwp", person_ref="match_ref", key=["match_ref", "benefit", "start_date"]
    ),
    "dwp_employment": ExtractSpec(
        system="dwp", person_ref="match_ref", key=["match_ref", "employer_ref", "start_date"]
    ),
    "social_care_episodes": ExtractSpec(
        system="social_care", person_ref="child_id", key=["episode_id"]
    ),
    "social_care_missing": ExtractSpec(
        system="social_care", person_ref="child_id", key=["missing_id"]
    ),
}


EMPTY_RAW_SQL = """SELECT * FROM (SELECT
    NULL::VARCHAR AS record_id, NULL::VARCHAR AS extract, NULL::VARCHAR AS record_key,
    NULL::VARCHAR AS source_system, NULL::VARCHAR AS source_person_id,
    NULL::VARCHAR AS first_name, NULL::VARCHAR AS middle_names, NULL::VARCHAR AS last_name,
    NULL::DATE AS dob, NULL::VARCHAR AS sex, NULL::VARCHAR AS postcode, NULL::VARCHAR AS address,
    NULL::VARCHAR AS upn, NULL::VARCHAR AS nhs_number, NULL::VARCHAR AS ni_number,
    NULL::VARCHAR AS family_id, NULL::VARCHAR[] AS history_postcodes,
    NULL::BOOLEAN AS postcode_is_location, NULL::VARCHAR AS match_ref) WHERE false"""


def _columns(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> list[str]:
    return [
        r[0]
        for r in con.execute(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_schema = ? AND table_name = ? ORDER BY ordinal_position",
            [schema, table],
        ).fetchall()
    ]


def raw_person_sql(con: duckdb.DuckDBPyConnection, schema: str = "staging",
                   only: set[str] | None = None) -> str | None:
    """UNION ALL of the person columns of every extract present in ``schema`` (of
    those in ``only``, when given)."""
    parts = []
    has_addresses = bool(_columns(con, schema, "cohort_addresses"))
    has_incidents = {"incident_ref", "postcode"} <= set(_columns(con, schema, "police_incidents"))
    for name, spec in EXTRACTS.items():
        cols = _columns(con, schema, name)
        if not cols or (only is not None and name not in only):
            continue

        def col(c: str, cols: list[str] = cols) -> str:
            return f"CAST(x.{c} AS VARCHAR)" if c in cols else "CAST(NULL AS VARCHAR)"

        key = " || '|' || ".join(f"coalesce(CAST(x.{k} AS VARCHAR), '')" for k in spec.key)
        pref = f"CAST(x.{spec.person_ref} AS VARCHAR)"
        if spec.system == "dwp":
            # DWP's person is the returned one: the reference sent plus the NI found.
            pref = f"{pref} || '|' || coalesce(fl_ni({col('ni_number')}), '')"
        dob = "x.dob" if "dob" in cols else "CAST(NULL AS DATE)"
        postcode, address, family = col("postcode"), "CAST(NULL AS VARCHAR)", "NULL"
        history, location = "CAST(NULL AS VARCHAR[])", "false"
        match_ref = f"CAST(x.{spec.person_ref} AS VARCHAR)" if spec.system == "dwp" else "NULL"
        join = ""
        if name == "police_nominals" and has_incidents:
            # A nominal carries no address of its own; the incident's location is
            # where the person was (their home for most domestic call-outs). It is
            # kept apart from home postcodes: it only ever supports a link.
            join = (
                f"LEFT JOIN (SELECT incident_ref, any_value(fl_postcode_uk(postcode)) AS pc "
                f"FROM {schema}.police_incidents GROUP BY incident_ref) pi "
                f"ON pi.incident_ref = x.incident_ref"
            )
            history = "CASE WHEN pi.pc IS NOT NULL THEN [pi.pc] ELSE [] END"
            location = "true"
        if name == "cohort_members":
            family = "x.family_id"
            if has_addresses:
                join = (
                    f"LEFT JOIN (SELECT family_id, arg_max(postcode, coalesce(to_date, "
                    f"DATE '9999-12-31')) AS pc, arg_max(address_line1, coalesce(to_date, "
                    f"DATE '9999-12-31')) AS a1, list(DISTINCT fl_postcode(postcode)) AS pcs "
                    f"FROM {schema}.cohort_addresses GROUP BY family_id) ca "
                    f"ON ca.family_id = x.family_id"
                )
                postcode, address, history = "ca.pc", "ca.a1", "ca.pcs"
        parts.append(
            f"""SELECT '{name}' || ':' || {key} AS record_id, '{name}' AS extract,
                {key} AS record_key, '{spec.system}' AS source_system, {pref} AS source_person_id,
                {col('first_name')} AS first_name, {col('middle_names')} AS middle_names,
                {col('last_name')} AS last_name, CAST({dob} AS DATE) AS dob, {col('sex')} AS sex,
                {postcode} AS postcode, {address} AS address, {col('upn')} AS upn,
                {col('nhs_number')} AS nhs_number, {col('ni_number')} AS ni_number,
                CAST({family} AS VARCHAR) AS family_id, {history} AS history_postcodes,
                {location} AS postcode_is_location, {match_ref} AS match_ref
            FROM {schema}.{name} x {join}"""
        )
    return "\nUNION ALL\n".join(parts) if parts else None


APPEARANCE_COLUMNS = (
    "source_system", "source_person_id", "first_name", "middle_names", "last_name", "dob", "sex",
    "postcode", "address", "upn", "nhs_number", "ni_number", "family_id",
    "postcode_is_location", "match_ref",
)
PROFILE_COLUMNS = (
    "source_system", "source_person_id", "first_name", "first_name_groups", "other_names",
    "middle_names", "last_name", "last_name_tokens", "dob", "dob_str", "sex", "postcode",
    "postcode_sector", "postcode_district", "address", "upn", "nhs_number", "ni_number",
    "match_ref",
)
# The standardised columns that make one profile: identical after standardisation.
PROFILE_KEY_COLUMNS = (
    "source_system", "source_person_id", "first_name", "middle_names", "last_name",
    "array_to_string(last_name_tokens, ' ')", "dob_str", "sex", "postcode", "address",
    "upn", "nhs_number", "ni_number",
)


def _drop_relation(con: duckdb.DuckDBPyConnection, schema: str, name: str) -> None:
    """Drop a table or view of that name (an older warehouse may hold either)."""
    for (kind,) in con.execute(
        "SELECT table_type FROM information_schema.tables WHERE table_schema = ? "
        "AND table_name = ? AND table_catalog = current_database()", [schema, name]
    ).fetchall():
        con.execute(f"DROP {'VIEW' if kind == 'VIEW' else 'TABLE'} {schema}.{name}")


# The staging views a person extract's records are read from besides its own (a
# nominal takes its incident's location, a member the family's addresses).
READS_ALSO = {"police_nominals": ("police_incidents",), "cohort_members": ("cohort_addresses",)}


def _source_states(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    """Per person extract, what its staging records are made of: the model of each
    staging view it reads (as rendered, not as DuckDB keeps it: that text may
    reorder an EXCLUDE list) and the deliveries loaded up to the run's month
    (staging reads nothing else: raw is appended a delivery at a time). The same
    state gives the same records."""
    import hashlib

    from famlink.models import layer_order

    month = "coalesce((SELECT max(as_of_month) FROM meta.run_parameters), '9999-12')"
    try:
        loaded = dict(con.execute(f"""
            SELECT extract, string_agg(CAST(delivery_id AS VARCHAR), ',' ORDER BY delivery_id)
            FROM meta.deliveries WHERE status = 'loaded' AND month <= {month}
            GROUP BY extract""").fetchall())
    except duckdb.CatalogException:       # no meta tables: nothing to compare with
        return {}
    # only a view famlink made reads what its model says: a table in staging (made by
    # hand) has no state and is always read
    made = {r[0] for r in con.execute(
        "SELECT view_name FROM duckdb_views() WHERE schema_name = 'staging' "
        "AND database_name = current_database()").fetchall()}
    views = {m.name.removeprefix("staging."): hashlib.md5(m.sql.encode()).hexdigest()
             for m in layer_order("staging")}

    def state(view: str) -> str:
        return f"{views.get(view, '')}:{loaded.get(view, '')}"
    return {name: "|".join(state(v) for v in reads) for name in EXTRACTS
            if set(reads := (name, *READS_ALSO.get(name, ()))) <= made}


def has_table(con: duckdb.DuckDBPyConnection, schema: str, name: str) -> bool:
    """Whether the warehouse (not a temp schema) holds the table ``schema.name``."""
    return bool(con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE schema_name = ? AND table_name = ? "
        "AND database_name = current_database()", [schema, name]).fetchall()[0][0])


def build_person_records(
    con: duckdb.DuckDBPyConnection, schema: str = "staging", reuse: bool = False
) -> int:
    """Standardise every person-bearing record; returns the number of records.

    A county repeats itself: a pupil is in six attendance terms, a nominal on
    many incidents, each time typed the same way. Records are first reduced to
    their distinct raw appearances (hash of the person columns) and only those
    are standardised. With ``reuse`` (the standardisation code is the one the
    previous run used), an appearance the previous run already standardised
    keeps its row of ``linkage.person_appearances`` and only new appearances are
    standardised; its postcode history (not part of the hash: a nominal's
    incident locations, a family's addresses) is always taken afresh. An extract
    whose staging records are made of what they were made of at the previous run
    (``_source_states``: a termly attendance file in a month without one) is not
    read at all; the extracts read are left in ``_fl_extracts_read``. Writes
    ``linkage.record_appearance`` (record -> appearance),
    ``linkage.person_appearances`` (standardised) and the view
    ``linkage.person_records`` (one standardised row per record).
    """
    install_standardise_macros(con)
    con.execute("CREATE SCHEMA IF NOT EXISTS linkage")
    reuse = reuse and has_table(con, "linkage", "person_appearances") \
        and has_table(con, "linkage", "record_sources") and schema == "staging"
    sources = _source_states(con) if schema == "staging" else {}
    read = set(EXTRACTS)
    if reuse:
        # an extract whose staging view reads the very deliveries it read at the
        # previous run gives the very records: it is not read again
        kept = dict(con.execute("SELECT extract, state FROM linkage.record_sources").fetchall())
        read = {name for name in EXTRACTS
                if name not in sources or sources[name] != kept.get(name)}
    in_read = "(" + ", ".join(f"'{n}'" for n in sorted(read)) + ")" if read else "('')"
    con.execute("CREATE OR REPLACE TEMP TABLE _fl_extracts_read AS SELECT unnest(?) AS extract",
                [sorted(read)])
    raw = raw_person_sql(con, schema, only=read) or EMPTY_RAW_SQL
    cols = ", ".join(APPEARANCE_COLUMNS)
    con.execute(f"CREATE OR REPLACE TEMP TABLE _fl_raw_people AS "
                f"SELECT hash({cols}) AS appearance_id, * FROM ({raw})")
    _drop_relation(con, "linkage", "person_records")
    if reuse:
        # the records added, gone or retyped since the previous run (``_fl_moved_records``),
        # and their appearances, whose profiles are built again (``build_profiles``); only
        # they are written, not the county's every record again
        con.execute(
            f"""CREATE OR REPLACE TEMP TABLE _fl_moved AS
            (SELECT record_id, appearance_id, true AS added FROM _fl_raw_people
             EXCEPT SELECT record_id, appearance_id, true FROM linkage.record_appearance
                    WHERE extract IN {in_read})
            UNION ALL
            (SELECT record_id, appearance_id, false FROM linkage.record_appearance
             WHERE extract IN {in_read}
             EXCEPT SELECT record_id, appearance_id, false FROM _fl_raw_people)""")
        con.execute("""CREATE OR REPLACE TEMP TABLE _fl_changed_appearances AS
                       SELECT DISTINCT appearance_id FROM _fl_moved""")
        con.execute("""CREATE OR REPLACE TEMP TABLE _fl_moved_records AS
                       SELECT DISTINCT record_id FROM _fl_moved""")
        con.execute("""DELETE FROM linkage.record_appearance WHERE record_id IN (
                       SELECT record_id FROM _fl_moved WHERE NOT added)""")
        con.execute(
            """INSERT INTO linkage.record_appearance
            SELECT r.record_id, r.extract, r.record_key, r.appearance_id FROM _fl_raw_people r
            SEMI JOIN _fl_moved m ON m.added AND m.record_id = r.record_id""")
        con.execute("DROP TABLE _fl_moved")
    else:
        con.execute("DROP TABLE IF EXISTS _fl_changed_appearances")
        con.execute("DROP TABLE IF EXISTS _fl_moved_records")
        con.execute(
            # record_id is unique: staging holds one current row per contract key
            """CREATE OR REPLACE TABLE linkage.record_appearance AS
            SELECT record_id, extract, record_key, appearance_id FROM _fl_raw_people""")
    # each appearance's postcode history, sorted so that one history is one value at
    # every run (only rows that carry one: most carry none)
    con.execute(
        """CREATE OR REPLACE TEMP TABLE _fl_history AS
        SELECT appearance_id, list_sort(list_distinct(flatten(list(history_postcodes))))
               AS history_postcodes
        FROM _fl_raw_people WHERE len(history_postcodes) > 0 GROUP BY appearance_id""")
    firsts = ", ".join(f"first(r.{c}) AS {c}" for c in APPEARANCE_COLUMNS)
    new_only = ("WHERE r.appearance_id NOT IN (SELECT appearance_id "
                "FROM linkage.person_appearances)" if reuse else "")
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE _fl_new_people AS
        SELECT r.appearance_id, {firsts},
               coalesce(any_value(h.history_postcodes), []) AS history_postcodes
        FROM _fl_raw_people r LEFT JOIN _fl_history h USING (appearance_id) {new_only}
        GROUP BY r.appearance_id""")
    con.execute("DROP TABLE _fl_raw_people")
    if reuse:
        # the kept appearances: those gone dropped, a changed history taken afresh
        con.execute(
            """DELETE FROM linkage.person_appearances WHERE appearance_id NOT IN (
                SELECT appearance_id FROM linkage.record_appearance)""")
        # (only appearances of the extracts read: the others' histories are as they were)
        con.execute(
            f"""CREATE OR REPLACE TEMP TABLE _fl_history_moved AS
            SELECT pa.appearance_id, coalesce(h.history_postcodes, []) AS history_postcodes
            FROM linkage.person_appearances pa LEFT JOIN _fl_history h USING (appearance_id)
            WHERE pa.history_postcodes IS DISTINCT FROM coalesce(h.history_postcodes, [])
              AND pa.appearance_id IN (SELECT appearance_id FROM linkage.record_appearance
                                       WHERE extract IN {in_read})""")
        con.execute(
            """UPDATE linkage.person_appearances SET history_postcodes = m.history_postcodes
            FROM _fl_history_moved m
            WHERE linkage.person_appearances.appearance_id = m.appearance_id""")
        con.execute("INSERT INTO _fl_changed_appearances SELECT appearance_id "
                    "FROM _fl_history_moved")
        con.execute("DROP TABLE _fl_history_moved")
        con.execute(f"""INSERT INTO linkage.person_appearances BY NAME
                        SELECT * FROM ({standardise_sql('_fl_new_people')})""")
    else:
        con.execute(
            f"""CREATE OR REPLACE TABLE linkage.person_appearances AS
            SELECT * FROM ({standardise_sql('_fl_new_people')})"""
        )
    con.execute("DROP TABLE _fl_new_people")
    con.execute("DROP TABLE _fl_history")
    con.execute("CREATE OR REPLACE TABLE linkage.record_sources (extract VARCHAR, state VARCHAR)")
    if sources:
        con.execute("INSERT INTO linkage.record_sources VALUES "
                    + ", ".join("(?, ?)" for _ in sources),
                    [v for item in sources.items() for v in item])
    con.execute(
        """CREATE OR REPLACE VIEW linkage.person_records AS
        SELECT ra.record_id, ra.extract, ra.record_key, pa.* EXCLUDE (appearance_id)
        FROM linkage.record_appearance ra
        JOIN linkage.person_appearances pa USING (appearance_id)"""
    )
    return con.execute("SELECT count(*) FROM linkage.record_appearance").fetchall()[0][0]


# A profile's id is its key's hash (60 bits of it, a positive BIGINT), so one
# profile has one id at every run and a scored pair keeps its meaning from run to run.
PROFILE_ID_SQL = "('0x' || substr(p.profile_key, 1, 15))::BIGINT"


def _profiles_sql(appearances: str) -> str:
    """The profiles of ``appearances`` (appearance_id, profile_key; every appearance
    of each key), each with every postcode its source person is known at."""
    firsts = ", ".join(f"first(r.{c}) AS {c}" for c in PROFILE_COLUMNS)
    return f"""
        WITH a AS (
            SELECT r.*, ap.profile_key FROM linkage.person_appearances r
            JOIN {appearances} ap USING (appearance_id)
        ), persons AS (
            SELECT DISTINCT source_system, source_person_id FROM a
            WHERE source_person_id IS NOT NULL
        ), hist AS (
            SELECT source_system, source_person_id,
                   list_distinct(flatten(list(list_concat(
                       coalesce(history_postcodes, []),
                       CASE WHEN postcode IS NOT NULL THEN [postcode] ELSE [] END)))) AS postcodes
            FROM linkage.person_appearances
            SEMI JOIN persons USING (source_system, source_person_id) GROUP BY ALL
        ), rep AS (
            SELECT appearance_id, min(record_id) AS rep_record_id
            FROM linkage.record_appearance SEMI JOIN a USING (appearance_id)
            GROUP BY appearance_id
        ), p AS (
            -- every column is a function of the key columns: any row of the group will do
            SELECT r.profile_key, min(rep.rep_record_id) AS rep_record_id,
                   {firsts},
                   first(coalesce(r.postcode_is_location, false)) AS postcode_is_location,
                   first(CASE WHEN r.source_system = 'cohort' THEN r.source_person_id END)
                       AS cohort_ref
            FROM a r JOIN rep USING (appearance_id)
            GROUP BY r.profile_key
        )
        SELECT {PROFILE_ID_SQL} AS profile_id, p.*,
               list_sort(list_filter(hist.postcodes, lambda x: x IS NOT NULL)) AS postcodes
        FROM p LEFT JOIN hist USING (source_system, source_person_id)"""


def build_profiles(con: duckdb.DuckDBPyConnection) -> int:
    """``_fl_profiles``: one row per distinct standardised appearance of a source
    person, with every postcode the source knows for that person (sorted); and
    ``_fl_record_profile`` (record -> profile). Returns the number of profiles.

    Kept in ``linkage.profiles`` (and each appearance's key in
    ``linkage.appearance_profiles``): after ``build_person_records`` with reuse, only
    the profiles of source persons with an appearance added, gone, or with changed
    records or history are built again (a profile is a function of its source
    person's appearances and their records)."""
    key = " || '|' || ".join(f"coalesce({c}, '~')" for c in PROFILE_KEY_COLUMNS)
    keyed = f"SELECT appearance_id, md5({key}) AS profile_key FROM linkage.person_appearances"
    reuse = (has_table(con, "linkage", "profiles")
             and has_table(con, "linkage", "appearance_profiles")
             and bool(con.execute("SELECT count(*) FROM duckdb_tables() WHERE temporary AND "
                                  "table_name = '_fl_changed_appearances'").fetchall()[0][0]))
    if not reuse:
        con.execute(f"CREATE OR REPLACE TABLE linkage.appearance_profiles AS {keyed}")
        con.execute("CREATE OR REPLACE TABLE linkage.profiles AS "
                    + _profiles_sql("linkage.appearance_profiles"))
    else:
        con.execute(
            f"""CREATE OR REPLACE TEMP TABLE _fl_new_keys AS {keyed}
            WHERE appearance_id NOT IN (SELECT appearance_id FROM linkage.appearance_profiles)""")
        con.execute(
            """CREATE OR REPLACE TEMP TABLE _fl_dirty_keys AS
            SELECT profile_key FROM linkage.appearance_profiles
            SEMI JOIN _fl_changed_appearances USING (appearance_id)
            UNION SELECT profile_key FROM _fl_new_keys""")
        # a source person's profiles share its postcodes: all of them are built again
        con.execute(
            """CREATE OR REPLACE TEMP TABLE _fl_dirty_persons AS
            SELECT source_system, source_person_id FROM linkage.profiles
            SEMI JOIN _fl_dirty_keys USING (profile_key) WHERE source_person_id IS NOT NULL
            UNION
            SELECT pa.source_system, pa.source_person_id FROM linkage.person_appearances pa
            SEMI JOIN _fl_new_keys USING (appearance_id) WHERE pa.source_person_id IS NOT NULL""")
        con.execute("""DELETE FROM linkage.appearance_profiles WHERE appearance_id NOT IN (
                        SELECT appearance_id FROM linkage.person_appearances)""")
        con.execute("INSERT INTO linkage.appearance_profiles SELECT * FROM _fl_new_keys")
        con.execute(
            """CREATE OR REPLACE TEMP TABLE _fl_rebuild AS
            SELECT ap.* FROM linkage.appearance_profiles ap WHERE ap.profile_key IN (
                SELECT profile_key FROM _fl_dirty_keys
                UNION SELECT profile_key FROM linkage.profiles
                      SEMI JOIN _fl_dirty_persons USING (source_system, source_person_id)
                UNION SELECT k.profile_key FROM linkage.appearance_profiles k
                      JOIN linkage.person_appearances pa USING (appearance_id)
                      SEMI JOIN _fl_dirty_persons USING (source_system, source_person_id))""")
        con.execute(
            """DELETE FROM linkage.profiles WHERE profile_key IN (
                SELECT profile_key FROM _fl_dirty_keys
                UNION SELECT profile_key FROM _fl_rebuild
                UNION SELECT profile_key FROM linkage.profiles
                      SEMI JOIN _fl_dirty_persons USING (source_system, source_person_id))""")
        con.execute("INSERT INTO linkage.profiles " + _profiles_sql("_fl_rebuild"))
        for t in ("_fl_new_keys", "_fl_dirty_keys", "_fl_dirty_persons", "_fl_rebuild"):
            con.execute(f"DROP TABLE {t}")
    con.execute("DROP TABLE IF EXISTS _fl_changed_appearances")
    con.execute("CREATE OR REPLACE TEMP VIEW _fl_profiles AS SELECT * FROM linkage.profiles")
    con.execute(
        """CREATE OR REPLACE TEMP TABLE _fl_record_profile AS
        SELECT ra.record_id, p.profile_id FROM linkage.record_appearance ra
        JOIN linkage.appearance_profiles ap USING (appearance_id)
        JOIN linkage.profiles p USING (profile_key)"""
    )
    n, ids = con.execute(
        "SELECT count(*), count(DISTINCT profile_id) FROM _fl_profiles").fetchall()[0]
    if n != ids:  # 60 bits of md5: about one county in a million would see this
        raise RuntimeError(f"{n - ids} profile ids collide; change PROFILE_ID_SQL")
    return n
