"""Great Expectations checks of a typed extract batch: an independent second check.

Ingest parses and rejects rows against the contract; these suites re-check the
typed batch that is about to be loaded, so a bug in ingest cannot load data
that breaks the contract unnoticed (severity ``contract``), and they flag
implausible data the contract does not reject (severity ``warning``).

The suites are the committed JSON files next to this module, generated from
the contract by ``python -m expectations.build``; they are loaded, not rebuilt,
at run time. Great Expectations is imported lazily (it costs seconds), and one
ephemeral context is shared by every validation in the process.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import threading
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from expectations.suites import DELIVERY_COLUMN

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

__all__ = ["DeliveryCheck", "ExpectationGroup", "ExpectationOutcome", "expectation_groups",
           "load_suite_json", "validate_counted", "validate_delivery", "warm_up"]

Severity = Literal["contract", "warning"]
SEVERITIES: tuple[Severity, ...] = ("contract", "warning")
WARNING_ONLY: tuple[Severity, ...] = ("warning",)
SUITE_DIR = Path(__file__).resolve().parent
SAMPLE_SIZE = 5
LINEAGE_PREFIX = "_"
_TABLE_EXPECTATIONS = {
    "expect_table_columns_to_match_ordered_list",
    "expect_table_columns_to_match_set",
    "expect_table_row_count_to_be_between",
    "expect_table_row_count_to_equal",
    "expect_table_column_count_to_equal",
}
# Row by row: each row passes or fails on its own values in the columns the expectation
# reads (a row_condition aside), so one distinct combination of values counts for every
# row that holds it.
_ROW_BY_ROW = {
    "expect_column_values_to_be_between",
    "expect_column_values_to_match_regex",
    "expect_column_values_to_not_match_regex",
    "expect_column_values_to_be_in_set",
    "expect_column_values_to_not_be_null",
    "expect_column_values_to_be_null",
    "expect_column_pair_values_a_to_be_greater_than_b",
}


@dataclass(frozen=True)
class ExpectationOutcome:
    """The result of one expectation on one delivery, free of GX types."""

    expectation_type: str
    column: str | None
    kwargs: dict[str, Any]
    severity: Severity
    success: bool
    unexpected_count: int
    element_count: int
    sample_unexpected: list[str] = field(default_factory=list)
    why: str = ""
    error: str | None = None

    def describe(self) -> str:
        """One line for logs and the run summary."""
        where = f"{self.column}: " if self.column else ""
        status = "ok" if self.success else f"{self.unexpected_count} unexpected"
        sample = f" e.g. {', '.join(self.sample_unexpected)}" if self.sample_unexpected else ""
        err = f" (error: {self.error})" if self.error else ""
        return f"[{self.severity}] {where}{self.expectation_type} {status}{sample}{err}"


@dataclass(frozen=True)
class DeliveryCheck:
    """Every expectation outcome for one delivery of one extract."""

    extract_name: str
    row_count: int
    outcomes: list[ExpectationOutcome]

    @property
    def contract_failures(self) -> list[ExpectationOutcome]:
        """Contract expectations that failed: ingest let through what it must reject."""
        return [o for o in self.outcomes if o.severity == "contract" and not o.success]

    @property
    def warnings(self) -> list[ExpectationOutcome]:
        """Plausibility expectations that failed (reported, not rejected)."""
        return [o for o in self.outcomes if o.severity == "warning" and not o.success]

    @property
    def success(self) -> bool:
        """True when no contract expectation failed."""
        return not self.contract_failures


@cache
def load_suite_json(extract_name: str) -> dict[str, Any]:
    """The committed suite of one extract as plain data."""
    path = SUITE_DIR / f"{extract_name}.json"
    return json.loads(path.read_text(encoding="utf-8"))


class _Runtime:
    """One ephemeral GX context, pandas datasource and batch definition per process."""

    def __init__(self) -> None:
        os.environ["GX_ANALYTICS_ENABLED"] = "False"  # before import: no telemetry calls
        import great_expectations as gx
        from great_expectations.data_context.types.base import ProgressBarsConfig

        self.gx = gx
        self.context = gx.get_context(mode="ephemeral")
        self.context.variables.progress_bars = ProgressBarsConfig(globally=False)
        source = self.context.data_sources.add_pandas("famlink_typed_batches")
        asset = source.add_dataframe_asset("delivery")
        self.batch_definition = asset.add_batch_definition_whole_dataframe("whole_delivery")
        self.validations: dict[str, Any] = {}

    def validation(self, extract_name: str, severities: tuple[Severity, ...] = SEVERITIES,
                   orders: tuple[int, ...] | None = None) -> Any:
        """The GX validation definition of an extract (the expectations of some severities,
        or only those at some positions of the suite), its suite loaded once from JSON."""
        part = "" if orders is None else "_" + "_".join(str(o) for o in orders)
        key = f"{extract_name}:{','.join(severities)}{part}"
        if key not in self.validations:
            data = load_suite_json(extract_name)
            expectations = []
            for order, exp in enumerate(data["expectations"]):
                if exp["meta"]["severity"] not in severities:
                    continue
                if orders is not None and order not in orders:
                    continue
                exp = json.loads(json.dumps(exp))
                exp["meta"]["order"] = order
                expectations.append(exp)
            suite = self.gx.ExpectationSuite(
                name=f"{data['name']}_{'_'.join(severities)}{part}", expectations=expectations,
                meta=data.get("meta"),
            )
            if len(suite.expectations) != len(expectations):
                # GX logs and drops an invalid expectation; a dropped check must not pass silently.
                raise ValueError(f"suite {extract_name}: GX rejected some expectations")
            suite = self.context.suites.add(suite)
            # A ValidationDefinition fetches the batch once; Batch.validate fetches (and
            # fingerprints, seconds per million rows) it a second time.
            self.validations[key] = self.context.validation_definitions.add(
                self.gx.ValidationDefinition(
                    name=f"{suite.name}_delivery", data=self.batch_definition, suite=suite
                )
            )
        return self.validations[key]


def _expectation_columns(spec: Any, data: dict[str, Any], exp: dict[str, Any]) -> set[str]:
    """The contract columns one expectation reads (a derived column's parts included)."""
    kwargs = exp["kwargs"]
    wanted: set[str] = set()
    if exp["type"] in _TABLE_EXPECTATIONS:
        wanted |= set(spec.column_names)
    wanted |= {kwargs[k] for k in ("column", "column_A", "column_B") if k in kwargs}
    wanted |= set(kwargs.get("column_list", []))
    condition = kwargs.get("row_condition")
    if isinstance(condition, dict):
        wanted.add(condition["column"]["name"])
    for name, parts in data["meta"].get("derived_columns", {}).items():
        if name in wanted:
            wanted |= set(parts)
    return wanted


def columns_needed(extract_name: str, severities: tuple[Severity, ...] = SEVERITIES,
                   ) -> list[str]:
    """The contract columns the expectations of some severities read, in contract order.

    Ingest validates only the warnings (the contract's own rules it enforces
    itself, in SQL): the batch it hands over then holds only these columns.
    """
    from famlink.contract import load_contract

    spec = load_contract().extract(extract_name)
    data = load_suite_json(spec.name)
    wanted: set[str] = set()
    for exp in data["expectations"]:
        if exp["meta"]["severity"] in severities:
            wanted |= _expectation_columns(spec, data, exp)
    return [c for c in spec.column_names if c in wanted]


@dataclass(frozen=True)
class ExpectationGroup:
    """Expectations of a suite that read the same columns, validated together."""

    orders: tuple[int, ...]          # their positions in the suite
    columns: tuple[str, ...]         # the contract columns they read, in contract order
    counted: bool                    # row by row: valid on distinct values with counts


def expectation_groups(extract_name: str, severities: tuple[Severity, ...] = SEVERITIES,
                       ) -> list[ExpectationGroup]:
    """The expectations of some severities, grouped by the columns they read.

    A group of row-by-row expectations without a row_condition is ``counted``:
    it can be validated once per distinct combination of its columns' values,
    each weighted by its rows (``validate_counted``), which for a county's two
    years of school attendance is a few thousand dates instead of ten million
    rows. The others need every row (``validate_delivery``).
    """
    from famlink.contract import load_contract

    spec = load_contract().extract(extract_name)
    data = load_suite_json(spec.name)
    groups: dict[tuple[tuple[str, ...], bool], list[int]] = {}
    for order, exp in enumerate(data["expectations"]):
        if exp["meta"]["severity"] not in severities:
            continue
        wanted = _expectation_columns(spec, data, exp)
        columns = tuple(c for c in spec.column_names if c in wanted)
        counted = exp["type"] in _ROW_BY_ROW and "row_condition" not in exp["kwargs"]
        groups.setdefault((columns, counted), []).append(order)
    return [ExpectationGroup(tuple(orders), columns, counted)
            for (columns, counted), orders in groups.items()]


_RUNTIME: _Runtime | None = None
_LOCK = threading.Lock()


def _runtime() -> _Runtime:
    global _RUNTIME
    if _RUNTIME is None:
        _RUNTIME = _Runtime()
    return _RUNTIME


_WARMING: threading.Thread | None = None


def _warm() -> None:
    try:
        with _LOCK:
            _runtime()
    except BaseException:  # noqa: BLE001  (validate_delivery builds it again and says why)
        pass


def warm_up() -> None:
    """Import Great Expectations and build its context in a background thread.

    Importing it costs seconds of Python (tens on a busy machine); started when
    ingest begins loading, it overlaps DuckDB's parsing and checking (which
    release the GIL) instead of adding to the run. ``validate_delivery`` waits
    for it through the same lock.
    """
    global _WARMING
    if _RUNTIME is None and _WARMING is None:
        _WARMING = threading.Thread(target=_warm, name="gx-warm-up", daemon=True)
        _WARMING.start()


# datetime64[ns] spans 1677-09-22 .. 2262-04-11; clipping keeps order, so a year
# typo (0198, 9999) still fails the 1900..as-of plausibility bounds.
_NS_MIN = dt.datetime(1678, 1, 1)
_NS_MAX = dt.datetime(2262, 1, 1)


def _to_datetime_ns(series: pd.Series) -> pd.Series:
    """A date/timestamp column as naive datetime64[ns], which GX compares vectorised."""
    import pandas as pd
    import pyarrow as pa

    if isinstance(series.dtype, pd.DatetimeTZDtype):
        series = series.dt.tz_convert(None)
    elif not pd.api.types.is_datetime64_any_dtype(series.dtype):
        # datetime.date objects (a pandas frame built by hand): via Arrow, which keeps
        # years 1..9999 (datetime64[ms]) for the clip below.
        try:
            arrow = pa.array(series, from_pandas=True)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            return series
        if not (pa.types.is_date(arrow.type) or pa.types.is_timestamp(arrow.type)):
            return series  # not date-like: leave it, the range check reports an error
        series = pd.Series(arrow.to_pandas(date_as_object=False), index=series.index)
        if isinstance(series.dtype, pd.DatetimeTZDtype):
            series = series.dt.tz_convert(None)
    if str(series.dtype) == "datetime64[ns]":
        return series
    return series.clip(_NS_MIN, _NS_MAX).astype("datetime64[ns]")


def _prepare_frame(extract_name: str, batch: pa.Table | pd.DataFrame) -> pd.DataFrame:
    """The pandas frame GX validates: lineage columns dropped, dates as datetime64[ns],
    derived plausibility columns appended (as the suite's meta lists them)."""
    import pandas as pd

    from famlink.contract import load_contract

    spec = load_contract().extract(extract_name)
    if isinstance(batch, pd.DataFrame):
        frame = batch
    else:
        frame = batch.to_pandas(date_as_object=False)
    delivery = frame["_delivery_id"] if "_delivery_id" in frame.columns else 0
    keep = [c for c in frame.columns if not str(c).startswith(LINEAGE_PREFIX)]
    frame = frame.loc[:, keep]
    for name, col in spec.columns.items():
        if name not in frame.columns:
            continue
        if col.type in ("date", "timestamp"):
            frame[name] = _to_datetime_ns(frame[name])
        elif col.type in ("integer", "decimal") and isinstance(
            frame[name].dtype, pd.api.extensions.ExtensionDtype
        ):
            # Nullable Int64/Float64 or Arrow-backed numbers: GX's range check is only
            # vectorised for numpy int/float, so these become float64 (NA -> NaN).
            frame[name] = frame[name].astype("float64")
    derived = load_suite_json(spec.name)["meta"].get("derived_columns", {})
    for name, parts in derived.items():
        if all(p in frame.columns for p in parts):
            total = frame[parts[0]].astype("float64")
            for p in parts[1:]:
                total = total + frame[p].astype("float64")
            frame[name] = total
    frame[DELIVERY_COLUMN] = delivery
    return frame


def _render(value: Any) -> str:
    """A sample value as short text: dates without a midnight time, integers without .0."""
    import numpy as np
    import pandas as pd

    if isinstance(value, tuple | list):
        return " / ".join(_render(v) for v in value)
    if isinstance(value, np.datetime64):
        value = pd.Timestamp(value)
    if value is None or value is pd.NaT or value is pd.NA or value != value:
        return "null"
    if isinstance(value, dt.datetime) and value.time() == dt.time(0):
        return value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # an integer column with nulls arrives as float64
    return str(value)


def _resolve(kwargs: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in kwargs.items():
        if isinstance(value, dict) and "$PARAMETER" in value:
            value = params[value["$PARAMETER"]].isoformat()
        out[key] = value
    return out


def _error(exception_info: Any) -> str | None:
    if not isinstance(exception_info, dict):
        return None
    if exception_info.get("raised_exception"):
        return str(exception_info.get("exception_message"))
    for info in exception_info.values():
        if isinstance(info, dict) and info.get("raised_exception"):
            return str(info.get("exception_message"))
    return None


def _outcome(
    raw: dict[str, Any], result: Any, row_count: int, params: dict[str, Any]
) -> ExpectationOutcome:
    kind = raw["type"]
    kwargs = _resolve(raw["kwargs"], params)
    res = result.result or {}
    if kind in _TABLE_EXPECTATIONS:
        column = None
        mismatched = (res.get("details") or {}).get("mismatched") or []
        unexpected = len(mismatched)
        sample = [
            f"position {m.get('Expected Column Position')}: expected {m.get('Expected')}, "
            f"found {m.get('Found')}"
            for m in mismatched[:SAMPLE_SIZE]
        ]
        elements = row_count
    else:
        if "column" in kwargs:
            column = kwargs["column"]
        elif "column_A" in kwargs:
            column = f"{kwargs['column_A']}, {kwargs['column_B']}"
        else:
            column = ", ".join(kwargs.get("column_list", [])) or None
        unexpected = int(res.get("unexpected_count") or 0)
        # Distinct values: five copies of the same bad code say less than five codes.
        rendered = dict.fromkeys(_render(v) for v in res.get("partial_unexpected_list") or [])
        sample = list(rendered)[:SAMPLE_SIZE]
        elements = int(res.get("element_count") or 0)
    error = _error(result.exception_info)
    return ExpectationOutcome(
        expectation_type=kind,
        column=column,
        kwargs=kwargs,
        severity=raw["meta"]["severity"],
        success=bool(result.success) and error is None,
        unexpected_count=unexpected,
        element_count=elements,
        sample_unexpected=sample,
        why=raw["meta"].get("why", ""),
        error=error,
    )


def _run(name: str, frame: pd.DataFrame, as_of: dt.date | None,
         severities: tuple[Severity, ...], orders: tuple[int, ...] | None,
         result_format: str) -> tuple[list[tuple[int, Any]], dict[str, Any]]:
    """GX's results on a prepared frame, each with its position in the suite."""
    as_of = as_of or dt.date.today()
    end_of_day = dt.datetime.combine(as_of, dt.time(23, 59, 59))
    params = {"as_of": end_of_day, "latest_plausible": end_of_day + dt.timedelta(days=366)}
    with _LOCK:
        runtime = _runtime()
        result = runtime.validation(name, severities, orders).run(
            batch_parameters={"dataframe": frame},
            expectation_parameters=params,
            result_format={"result_format": result_format,
                           "partial_unexpected_count": SAMPLE_SIZE},
        )
    ordered = [(int(res.expectation_config.meta["order"]), res) for res in result.results]
    ordered.sort(key=lambda pair: pair[0])
    return ordered, params


def validate_delivery(
    extract_name: str,
    batch: pa.Table | pd.DataFrame,
    *,
    as_of: dt.date | None = None,
    severities: tuple[Severity, ...] = SEVERITIES,
    orders: tuple[int, ...] | None = None,
) -> DeliveryCheck:
    """Validate one typed delivery against its committed suite.

    ``extract_name`` is the table name or file name (``yot_offences[.csv]``);
    ``as_of`` (default today) bounds the plausible dates. Never raises on bad
    data: every failure is an outcome, so the caller decides what is fatal.
    ``severities`` picks the expectations run (ingest: only ``warning``), and
    ``orders`` (positions in the suite) narrows them further.
    """
    from famlink.contract import load_contract

    name = load_contract().extract(extract_name).name
    frame = _prepare_frame(name, batch)
    raw = load_suite_json(name)["expectations"]
    ordered, params = _run(name, frame, as_of, severities, orders, "BASIC")
    outcomes = [_outcome(raw[order], res, len(frame), params) for order, res in ordered]
    return DeliveryCheck(extract_name=name, row_count=len(frame), outcomes=outcomes)


def validate_counted(
    extract_name: str,
    batch: pa.Table,
    count_column: str,
    *,
    orders: tuple[int, ...],
    as_of: dt.date | None = None,
) -> DeliveryCheck:
    """Row-by-row expectations on distinct values, each row of ``batch`` standing for
    ``count_column`` rows: counts as if every row were validated.

    ``orders`` must be a ``counted`` group of ``expectation_groups``. The batch's
    rows come in the order their values first appear, so the sample of
    unexpected values is the first distinct ones delivered.
    """
    import numpy as np

    from famlink.contract import load_contract

    name = load_contract().extract(extract_name).name
    raw = load_suite_json(name)["expectations"]
    if any(raw[o]["type"] not in _ROW_BY_ROW or "row_condition" in raw[o]["kwargs"]
           for o in orders):
        raise ValueError(f"{name}: expectations {orders} are not all row by row")
    weights = np.asarray(batch.column(count_column).to_numpy(zero_copy_only=False),
                         dtype=np.int64)
    frame = _prepare_frame(name, batch.drop_columns([count_column]))
    rows = int(weights.sum())
    ordered, params = _run(name, frame, as_of, SEVERITIES, orders, "COMPLETE")
    outcomes = []
    for order, res in ordered:
        outcome = _outcome(raw[order], res, len(frame), params)
        index = (res.result or {}).get("unexpected_index_list") or []
        positions = frame.index.get_indexer(list(index))
        outcome = replace(outcome, unexpected_count=int(weights[positions].sum()),
                          element_count=rows)
        outcomes.append(outcome)
    return DeliveryCheck(extract_name=name, row_count=rows, outcomes=outcomes)
