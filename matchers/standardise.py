"""Standardisation of person-bearing records into one comparable shape.

Every source types names, postcodes and sexes its own way; linkage compares
like with like only after they are brought to one form. The rules live in
DuckDB macros so that a county's million records are standardised in SQL,
and the small Python wrappers exist for tests and for ``famlink link``.
A value that cannot be standardised (a foreign postcode, a name in another
script) is kept as text or treated as missing, never an error.
"""

from __future__ import annotations

from importlib import resources

import duckdb

from matchers.identifiers import install_identifier_macros

TITLES = (
    "MR", "MRS", "MS", "MISS", "MX", "DR", "MASTER", "SIR", "DAME", "LADY", "LORD",
    "REV", "REVD", "PROF", "FR", "SR", "JR", "JNR", "SNR", "II", "III", "IV",
)
PLACEHOLDER_NAMES = (
    "UNKNOWN", "NOT KNOWN", "NK", "N K", "UNK", "NONE", "NULL", "NA", "N A", "BABY",
    "UNBORN", "TBC", "TBA", "X", "XX", "XXX", "ANON", "ANONYMOUS", "NO NAME",
)
_SQL_LIST = ", ".join

MACROS_SQL = rf"""
CREATE OR REPLACE MACRO fl_clean_name(v) AS nullif(trim(regexp_replace(regexp_replace(
    upper(strip_accents(coalesce(CAST(v AS VARCHAR), ''))), '[''`’‘]', '', 'g'),
    '[^A-Z]+', ' ', 'g')), '');
CREATE OR REPLACE MACRO fl_clean_tokens(c) AS CASE
    WHEN c IS NULL OR c IN ({_SQL_LIST(f"'{p}'" for p in PLACEHOLDER_NAMES)}) THEN []
    ELSE list_filter(string_split(c, ' '),
        lambda t: t <> '' AND t NOT IN ({_SQL_LIST(f"'{t}'" for t in TITLES)})) END;
CREATE OR REPLACE MACRO fl_name_tokens(v) AS fl_clean_tokens(fl_clean_name(v));
CREATE OR REPLACE MACRO fl_pc_compact(v) AS
    regexp_replace(upper(coalesce(CAST(v AS VARCHAR), '')), '[^A-Z0-9]', '', 'g');
CREATE OR REPLACE MACRO fl_pc_is_uk(v) AS
    regexp_full_match(fl_pc_compact(v), '[A-Z]{{1,2}}[0-9][A-Z0-9]?[0-9][A-Z]{{2}}');
CREATE OR REPLACE MACRO fl_postcode(v) AS CASE
    WHEN fl_pc_is_uk(v) THEN substr(fl_pc_compact(v), 1, length(fl_pc_compact(v)) - 3)
        || ' ' || right(fl_pc_compact(v), 3)
    ELSE nullif(upper(trim(regexp_replace(coalesce(CAST(v AS VARCHAR), ''), '\s+', ' ', 'g'))), '')
    END;
CREATE OR REPLACE MACRO fl_postcode_uk(v) AS CASE WHEN fl_pc_is_uk(v) THEN fl_postcode(v) END;
CREATE OR REPLACE MACRO fl_postcode_district(v) AS CASE
    WHEN fl_pc_is_uk(v) THEN substr(fl_pc_compact(v), 1, length(fl_pc_compact(v)) - 3) END;
CREATE OR REPLACE MACRO fl_postcode_sector(v) AS CASE
    WHEN fl_pc_is_uk(v) THEN substr(fl_pc_compact(v), 1, length(fl_pc_compact(v)) - 3)
        || ' ' || substr(right(fl_pc_compact(v), 3), 1, 1) END;
CREATE OR REPLACE MACRO fl_sex(v) AS CASE upper(trim(coalesce(CAST(v AS VARCHAR), '')))
    WHEN 'M' THEN 'M' WHEN 'MALE' THEN 'M' WHEN 'F' THEN 'F' WHEN 'FEMALE' THEN 'F' END;
CREATE OR REPLACE MACRO fl_address(v) AS nullif(trim(regexp_replace(regexp_replace(
    regexp_replace(regexp_replace(regexp_replace(regexp_replace(
    ' ' || upper(strip_accents(coalesce(CAST(v AS VARCHAR), ''))) || ' ',
    '[^A-Z0-9]+', ' ', 'g'),
    ' RD ', ' ROAD ', 'g'), ' AVE? ', ' AVENUE ', 'g'), ' CL ', ' CLOSE ', 'g'),
    ' (DR|DRV) ', ' DRIVE ', 'g'), '\s+', ' ', 'g')), '');
CREATE OR REPLACE MACRO fl_parse_date(v) AS coalesce(
    TRY_CAST(try_strptime(trim(CAST(v AS VARCHAR)), '%Y-%m-%d') AS DATE),
    TRY_CAST(try_strptime(trim(CAST(v AS VARCHAR)), '%d/%m/%Y') AS DATE),
    TRY_CAST(try_strptime(trim(CAST(v AS VARCHAR)), '%Y%m%d') AS DATE));
"""


def install_standardise_macros(con: duckdb.DuckDBPyConnection) -> None:
    """Macros for names, postcodes, sexes, addresses and the nickname lookup."""
    install_identifier_macros(con)
    con.execute(MACROS_SQL)
    exists = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE table_name = 'fl_name_groups' AND temporary"
    ).fetchall()[0][0]
    if exists:
        return
    path = resources.files("matchers") / "data" / "nicknames.csv"
    with resources.as_file(path) as p:
        con.execute(
            "CREATE TEMP TABLE fl_nicknames AS SELECT upper(trim(name)) AS name, "
            "upper(trim(formal_name)) AS formal_name "
            "FROM read_csv(?, header=true, all_varchar=true)",
            [str(p)],
        )
    # Each name maps to itself plus every formal name it can stand for, so two names
    # are compatible when their groups intersect (BILL and WILL share WILLIAM).
    con.execute(
        """CREATE TEMP TABLE fl_name_groups AS
        SELECT name, list_sort(list_distinct(list(g))) AS name_groups FROM (
            SELECT name, formal_name AS g FROM fl_nicknames
            UNION ALL SELECT name, name FROM fl_nicknames
            UNION ALL SELECT formal_name, formal_name FROM fl_nicknames
        ) GROUP BY name"""
    )


def standardise_sql(source: str) -> str:
    """SQL turning raw person columns of ``source`` into standardised ones.

    ``source`` must have: record_id, first_name, middle_names, last_name, dob (DATE),
    sex, postcode, address, upn, nhs_number, ni_number; other columns pass through.
    """
    return f"""
    WITH c AS (
        SELECT s.*,
            fl_clean_name(s.first_name) AS _fc, fl_clean_name(s.middle_names) AS _mc,
            fl_clean_name(s.last_name) AS _lc
        FROM {source} AS s
    ), t AS (
        SELECT c.* EXCLUDE (_fc, _mc, _lc),
            fl_clean_tokens(_fc) AS _ft, fl_clean_tokens(_mc) AS _mt, fl_clean_tokens(_lc) AS _lt
        FROM c
    ), n AS (
        SELECT t.* EXCLUDE (first_name, middle_names, last_name, sex, postcode, address,
                            upn, nhs_number, ni_number),
            t.postcode AS _pc_raw,
            nullif(_ft[1], '') AS first_name,
            list_concat(_ft[2:], _mt) AS other_names,
            nullif(array_to_string(list_concat(_ft[2:], _mt), ' '), '') AS middle_names,
            nullif(array_to_string(_lt, ''), '') AS last_name,
            _lt AS last_name_tokens,
            fl_sex(t.sex) AS sex,
            fl_postcode(t.postcode) AS postcode,
            fl_postcode_sector(t.postcode) AS postcode_sector,
            fl_postcode_district(t.postcode) AS postcode_district,
            fl_address(t.address) AS address,
            fl_upn(t.upn) AS upn, fl_nhs(t.nhs_number) AS nhs_number,
            fl_ni(t.ni_number) AS ni_number
        FROM t
    )
    SELECT n.* EXCLUDE (_ft, _mt, _lt, _pc_raw),
        coalesce(g.name_groups, CASE WHEN n.first_name IS NOT NULL THEN [n.first_name] END)
            AS first_name_groups,
        strftime(n.dob, '%Y-%m-%d') AS dob_str
    FROM n LEFT JOIN fl_name_groups g ON g.name = n.first_name
    """


def _one(con: duckdb.DuckDBPyConnection, sql: str, value: str | None):
    install_standardise_macros(con)
    return con.execute(sql, [value]).fetchall()[0][0]


def standardise_name(value: str | None, con: duckdb.DuckDBPyConnection | None = None) -> list[str]:
    """Name tokens as the pipeline compares them (tests and debugging)."""
    return _one(con or duckdb.connect(), "SELECT fl_name_tokens(?::VARCHAR)", value)


def standardise_postcode(value: str | None, con: duckdb.DuckDBPyConnection | None = None):
    """Canonical UK postcode ('SS17 8AA'), the trimmed text when not UK, or None."""
    return _one(con or duckdb.connect(), "SELECT fl_postcode(?::VARCHAR)", value)


def name_groups(value: str, con: duckdb.DuckDBPyConnection | None = None) -> list[str]:
    """Formal names a given name can stand for, itself included."""
    con = con or duckdb.connect()
    install_standardise_macros(con)
    rows = con.execute("SELECT name_groups FROM fl_name_groups WHERE name = ?", [value]).fetchall()
    return rows[0][0] if rows else [value]
