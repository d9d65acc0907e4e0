"""Contract checks for one delivery, compiled from extracts.yaml to one SQL query.

Every column of the contract becomes a typed expression and a reason
expression (NULL when the value is fine). The query runs vectorised in DuckDB
over the Arrow batch of strings, so a million-row attendance snapshot is
checked in seconds, and every fault keeps its row number and column.
"""

from __future__ import annotations

from dataclasses import dataclass

from famlink.contract import IDENTIFIER_TYPES, INDICATOR_CODE, ColumnSpec, ExtractSpec
from famlink.ingest.guards import load_guards

DUCKDB_TYPES = {
    "date": "DATE",
    "timestamp": "TIMESTAMP",
    "integer": "BIGINT",
    "decimal": "DOUBLE",
}
IDENTIFIER_MACROS = {"upn": "fl_upn", "nhs_number": "fl_nhs", "ni_number": "fl_ni",
                     "uprn": "fl_uprn"}
IDENTIFIER_LABELS = {"upn": "UPN (13 characters, check letter)",
                     "nhs_number": "NHS number (10 digits, modulus-11 check digit)",
                     "ni_number": "National Insurance number (HMRC rules)",
                     "uprn": "UPRN (up to 12 digits)"}


def sql_type(col: ColumnSpec) -> str:
    return DUCKDB_TYPES.get(col.type, "VARCHAR")


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def quote_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def human_format(fmt: str) -> str:
    """'%d/%m/%Y' -> 'DD/MM/YYYY': what a data officer recognises."""
    for code, word in (("%d", "DD"), ("%m", "MM"), ("%Y", "YYYY"), ("%H", "hh"),
                       ("%M", "mm"), ("%S", "ss")):
        fmt = fmt.replace(code, word)
    return fmt


@dataclass(frozen=True)
class ColumnChecks:
    typed: str                 # SQL expression of the typed value (over the value ``v``)
    rejects: list[tuple[str, str]]  # (condition, reason) that reject the row
    flags: list[tuple[str, str]]    # (condition, reason) that keep the row, value missing


def trimmed(col: ColumnSpec) -> str:
    """The delivered value trimmed, an empty one missing: what every check reads."""
    return f"NULLIF(trim({quote_ident(col.name)}), '')"


def column_checks(col: ColumnSpec, v: str | None = None, typed_as: str | None = None,
                  ) -> ColumnChecks:
    """A column's typed value and the conditions that reject the row or flag the value.

    ``v`` names the trimmed value (default: the expression itself) and
    ``typed_as`` the typed one in the conditions (default: the typed
    expression): ``checked_batch_sql`` computes each once and refers to them.
    """
    raw = quote_ident(col.name)
    v = v or trimmed(col)
    rejects: list[tuple[str, str]] = []
    flags: list[tuple[str, str]] = []
    if col.required:
        rejects.append((f"{v} IS NULL", "required value is missing"))
    if col.type == "date":
        typed = f"CAST(try_strptime({v}, {quote_literal(col.format or '%Y-%m-%d')}) AS DATE)"
        t = typed_as or typed
        rejects.append((f"{v} IS NOT NULL AND {t} IS NULL",
                        f"not a valid date in the format {human_format(col.format or '')}"))
    elif col.type == "timestamp":
        typed = f"try_strptime({v}, {quote_literal(col.format or '%Y-%m-%dT%H:%M:%S')})"
        t = typed_as or typed
        when = human_format(col.format or "")
        rejects.append((f"{v} IS NOT NULL AND {t} IS NULL",
                        f"not a valid date and time in the format {when}"))
    elif col.type == "integer":
        typed = f"CASE WHEN regexp_full_match({v}, '[+-]?[0-9]+') THEN TRY_CAST({v} AS BIGINT) END"
        t = typed_as or typed
        rejects.append((f"{v} IS NOT NULL AND ({t}) IS NULL", "not a whole number"))
        if col.min is not None:
            rejects.append((f"({t}) < {col.min}", f"below the minimum of {col.min}"))
        if col.max is not None:
            rejects.append((f"({t}) > {col.max}", f"above the maximum of {col.max}"))
    elif col.type == "decimal":
        typed = (f"CASE WHEN regexp_full_match({v}, '[+-]?([0-9]+\\.?[0-9]*|\\.[0-9]+)') "
                 f"THEN TRY_CAST({v} AS DOUBLE) END")
        t = typed_as or typed
        rejects.append((f"{v} IS NOT NULL AND ({t}) IS NULL", "not a number"))
    elif col.type == "enum":
        values = col.values or []
        whens = " ".join(f"WHEN {quote_literal(x.upper())} THEN {quote_literal(x)}" for x in values)
        typed = f"CASE upper({v}) {whens} END"
        t = typed_as or typed
        rejects.append((f"{v} IS NOT NULL AND ({t}) IS NULL",
                        f"not one of {', '.join(values)}"))
    elif col.type in IDENTIFIER_TYPES:
        typed = f"{IDENTIFIER_MACROS[col.type]}({v})"
        t = typed_as or typed
        flags.append((f"{v} IS NOT NULL AND {t} IS NULL",
                      f"invalid {IDENTIFIER_LABELS[col.type]}: treated as missing"))
    elif col.type == "postcode":
        typed = f"upper({v})"
    else:  # free text as typed by the source
        typed = f"CASE WHEN {v} IS NULL THEN NULL ELSE {raw} END"
    if col.pattern:
        rejects.append((f"{v} IS NOT NULL AND NOT regexp_full_match({v}, "
                        f"{quote_literal(col.pattern.strip('^$'))})",
                        f"does not match the pattern {col.pattern}"))
    return ColumnChecks(typed=typed, rejects=rejects, flags=flags)


# A reference is what a case system prints on a record: never a spreadsheet
# formula (= + - @ first) and never a control character (tab, CR, NUL...).
REFERENCE_REASON = ("not a reference: a reference cannot begin with =, +, - or @ "
                    "or hold control characters")
INDICATOR_REASON = ("not an indicator code of indicators.yaml's form "
                    "(a digit, then letters: 1A, 3Aa)")


def form_checks(spec: ExtractSpec, col: ColumnSpec, v: str | None = None,
                ) -> list[tuple[str, str]]:
    """Rejects for columns whose form guards.yaml names: references and indicator codes."""
    guards = load_guards()
    raw = quote_ident(col.name)
    v = v or trimmed(col)
    rejects: list[tuple[str, str]] = []
    if col.name in guards.reference_columns:
        rejects.append((f"{v} IS NOT NULL AND (regexp_matches({v}, '^[=+@-]') "
                        f"OR regexp_matches({raw}, '[[:cntrl:]]'))", REFERENCE_REASON))
    if col.name in guards.indicator_columns.get(spec.name, []):
        rejects.append((f"{v} IS NOT NULL AND NOT regexp_full_match({v}, "
                        f"{quote_literal(INDICATOR_CODE)})", INDICATOR_REASON))
    return rejects


def checked_batch_sql(spec: ExtractSpec, source: str = "incoming") -> str:
    """One row per delivered row: typed columns plus a list of faults.

    ``_faults`` is a list of structs (column, reason, value, severity), and
    ``_rejected`` says whether one of them rejects the row. For a
    delta deletion (record_status D) only the key columns must be valid: the
    other columns of a deletion carry nothing to load.

    Three levels, so that each value is trimmed once and typed once (an
    identifier's check digit is the dearest expression of a county's load),
    and the list of faults is built only for the rows that have one.
    """
    deletion = ("upper(trim(coalesce(\"record_status\", ''))) = 'D'"
                if spec.has_record_status else "false")
    values: list[str] = []          # level 1: trimmed values beside the delivered ones
    typed_cols: list[str] = []      # level 2: typed values
    conditions: list[str] = []      # level 3: a boolean per fault
    items: list[str] = []
    severities: list[tuple[str, str, str]] = []
    for i, col in enumerate(spec.columns.values()):
        v, t = f"__v{i}", f"__t{i}"
        values.append(f"{trimmed(col)} AS {v}")
        checks = column_checks(col, v=v, typed_as=t)
        typed_cols.append(f"{checks.typed} AS {t}")
        applies = "true" if col.name in spec.key or col.name == "record_status" \
            else f"NOT ({deletion})"
        faults = [(f"({applies}) AND coalesce({condition}, false)", reason, "rejected")
                  for condition, reason in checks.rejects + form_checks(spec, col, v=v)]
        faults += [(f"coalesce({condition}, false)", reason, "flagged")
                   for condition, reason in checks.flags]
        for condition, reason, severity in faults:
            flag = f"__f{len(conditions)}"
            conditions.append(f"{condition} AS {flag}")
            severities.append((col.name, reason, severity))
            items.append(
                f"CASE WHEN {flag} THEN {{'column': {quote_literal(col.name)}, "
                f"'reason': {quote_literal(reason)}, 'value': {quote_ident(col.name)}, "
                f"'severity': '{severity}'}} END")
    flags = [c.rsplit(" AS ", 1)[1] for c in conditions]
    any_fault = " OR ".join(flags) or "false"
    rejected = " OR ".join(f for f, (_, _, sev) in zip(flags, severities, strict=True)
                           if sev == "rejected") or "false"
    fault_list = ("CASE WHEN " + any_fault + " THEN list_filter([" + ", ".join(items)
                  + "], lambda f: f IS NOT NULL) ELSE []::STRUCT(\"column\" VARCHAR, "
                  "reason VARCHAR, \"value\" VARCHAR, severity VARCHAR)[] END"
                  if items else "[]::STRUCT(\"column\" VARCHAR, reason VARCHAR, "
                  "\"value\" VARCHAR, severity VARCHAR)[]")
    out = [f"__t{i} AS {quote_ident(c)}" for i, c in enumerate(spec.columns)]
    return (f"SELECT _row_number, {', '.join(out)}, {fault_list} AS _faults, "
            f"{rejected} AS _rejected FROM ("
            f"SELECT *, {', '.join(conditions) or 'NULL AS __none'} FROM ("
            f"SELECT *, {', '.join(typed_cols)} FROM ("
            f"SELECT *, {', '.join(values)} FROM {source})))")


# Types whose typed value never holds '|' and reads back as one text form.
_PLAIN_KEY_TYPES = {"date", "timestamp", "integer", "upn", "nhs_number", "ni_number", "uprn"}


def key_parts(spec: ExtractSpec) -> list[str]:
    """SQL naming a record as ``key_expression`` does, as one or more columns to group by.

    The key's own columns when that is the same thing: the text joins its
    parts with '|', so two free-text parts ('a|b', 'c' and 'a', 'b|c') can
    make one key, but with at most one part that may hold '|' the text is
    unambiguous, and grouping the typed columns costs a third of building it.
    """
    free = [k for k in spec.key if spec.columns[k].type not in _PLAIN_KEY_TYPES
            and not (spec.columns[k].type == "enum"
                     and not any("|" in v for v in spec.columns[k].values or []))]
    if len(free) > 1 or any(spec.columns[k].type == "decimal" for k in spec.key):
        return [key_expression(spec)]
    return [quote_ident(k) for k in spec.key]


def key_expression(spec: ExtractSpec, alias: str = "") -> str:
    """The record key as text (parts joined by '|', dates ISO): how records are named."""
    prefix = f"{alias}." if alias else ""
    parts = [f"coalesce(CAST({prefix}{quote_ident(k)} AS VARCHAR), '')" for k in spec.key]
    return " || '|' || ".join(parts)
