"""Existing tables -> landing events (``ingest.source: tables``): bring your own data.

:func:`tables_landing` reads each table configured under ``ingest.tables`` (``listings`` required; ``sales``,
``price_changes``, ``removals`` optional), maps its columns onto one landing event type by the configured
``columns`` (our bronze column -> their column or a Spark SQL expression over their columns) and returns,
per event type, a DataFrame of ``raw_payload string, source_file string, ingested_at timestamp``: the shape the
landing-file stream produces, so :func:`pricing.sources.landing.parse`, ``to_bronze`` and ``to_quarantine``,
and with them the quarantine, the reconciliation and the insert-only MERGE on ``event_id``, apply unchanged.
Each ``raw_payload`` is a JSON object (``to_json``, no Python UDFs) matching
``pricing.sources.schemas.LANDING[event_type]``.

Mapping rules:

- **Checked before any write.**  The config already rejected unknown and missing columns and bad names
  (:class:`pricing.platform.config.SourceTableConfig`).  Here every table is opened and every expression and
  ``where`` analysed against it before ingest writes anything; a missing table, a column they do not have, a
  SQL syntax error or a type that cannot be mapped raises :class:`ConfigError` naming the config key.
- **event_id.**  A mapped ``event_id`` is taken as text.  Otherwise it is derived:
  ``tables:<event_type>:`` + hex SHA-256 of the JSON array ``[source name, key values...]``, where the source
  name is ``table`` or ``path`` as configured and the key values are the section's ``key`` columns as they
  enter the payload (``event_time`` as its UTC landing text, any other as text; null stays null).  The same
  row gives the same id on every run and cluster, so a re-run inserts nothing; renaming the source, or
  changing ``key``, gives every row a new id (map ``event_id`` when the source has a stable one).
- **event_time.**  A ``timestamp`` is written in UTC as ``yyyy-MM-dd'T'HH:mm:ss.SSS'Z'`` (independent of the
  session time zone; below a millisecond truncated); a ``timestamp_ntz`` is taken as UTC wall time; a
  ``date`` as midnight UTC.  A string is passed through unchanged: in the landing format
  (``2024-03-01T10:00:00.000Z``) it is accepted, anything else is quarantined as ``unparseable_timestamp``
  (map ``try_to_timestamp(col, 'pattern')`` for other layouts; a null is quarantined the same way).
  Numbers are refused: map ``timestamp_seconds(col)`` or ``timestamp_millis(col)``.
- **Typed columns** (ids, prices, ratings, ``seller_is_shop``) are cast with ``try_cast``; a non-null value that
  does not cast (``"twelve"`` for a price) makes the record's payload carry its typed fields as text, so
  ingest quarantines it as ``wrong_type`` with the values visible.  ``listing_id`` and ``seller_id`` are
  integers: map ``xxhash64(their_id)`` for text ids.
- **Text columns** are cast to string.  ``style_tags`` must be an array (mapped null or left out: ``[]``).
  ``seller_rating``, ``seller_experience_years``, ``seller_is_shop`` fill the landing ``seller`` struct (null
  when none is mapped).
- **Lineage.**  ``source_file`` is the source name (``table`` or ``path`` as configured); ``ingested_at`` is
  ``current_timestamp()``.  A quarantined record is keyed by source name and payload, so a re-run
  quarantines nothing twice.

Each run reads the whole table (after ``where``): cost grows with the table, not with what is new, and a row
changed in place keeps its ``event_id`` and so is not ingested again; record such changes as
``price_changes`` rows, or narrow the read with ``where``.
"""

from __future__ import annotations

import re

from pyspark.errors import AnalysisException, ParseException
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from pricing.platform.config import Config, SourceTableConfig, TablesConfig
from pricing.platform.errors import ConfigError
from pricing.sources import schemas

ID_PREFIX = "tables"
"""Derived event ids start ``tables:<event_type>:``."""
SELLER_FIELDS = ("rating", "experience_years", "is_shop")
"""The landing ``seller`` struct's fields, mapped as ``seller_<field>``."""
_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:/")
_DAY_US = 86_400_000_000


def source_name(t: SourceTableConfig) -> str:
    """The configured ``table`` or ``path``: ``source_file`` of its records, and part of derived event ids."""
    name = t.table if t.table is not None else t.path
    assert name is not None  # the config requires exactly one of them
    return name


def location(cfg: Config, t: SourceTableConfig) -> str:
    """Where ``path`` points: a URI as is, else resolved against the project root."""
    assert t.path is not None
    return t.path if _URI.match(t.path) else str(cfg.path(t.path))


def _fail(key: str, what: str, exc: Exception) -> ConfigError:
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
    return ConfigError(f"{key}: {what} ({first})")


def read_source(spark: SparkSession, cfg: Config, section: str, t: SourceTableConfig) -> DataFrame:
    """Their table as configured (``where`` applied); ConfigError naming the key when it cannot be read."""
    key = f"ingest.tables.{section}"
    try:
        if t.table is not None:
            df = spark.read.table(".".join(f"`{p}`" for p in t.table.split(".")))
        else:
            df = spark.read.format("delta").load(location(cfg, t))
        df.schema  # noqa: B018 - resolves the table now, not at the first write
    except AnalysisException as exc:
        where = f"table {t.table}" if t.table is not None else f"Delta path {location(cfg, t)}"
        raise _fail(f"{key}.{'table' if t.table is not None else 'path'}", f"cannot read {where}", exc) from None
    if t.where is not None:
        try:
            df = df.where(F.expr(t.where))
            df.schema  # noqa: B018
        except (AnalysisException, ParseException) as exc:
            raise _fail(f"{key}.where", f"{t.where!r} is not a predicate on {source_name(t)}", exc) from None
    return df


def _iso_utc(ts: Column) -> Column:
    """A ``timestamp`` (an instant) -> ``yyyy-MM-ddTHH:mm:ss.SSSZ`` in UTC, whatever the session time zone."""
    us = F.unix_micros(ts)
    day = F.floor(us / F.lit(_DAY_US))
    tod = us - day * F.lit(_DAY_US)

    def pad(c: Column, n: int) -> Column:
        return F.lpad(F.floor(c).cast("string"), n, "0")

    return F.concat(
        F.date_from_unix_date(day.cast("int")).cast("string"), F.lit("T"),
        pad(tod / 3_600_000_000, 2), F.lit(":"), pad(tod / 60_000_000 % 60, 2), F.lit(":"),
        pad(tod / 1_000_000 % 60, 2), F.lit("."), pad(tod / 1000 % 1000, 3), F.lit("Z"),
    )


def _event_time(c: Column, dtype: T.DataType, key: str) -> Column:
    if isinstance(dtype, T.TimestampType):
        return _iso_utc(c)
    if isinstance(dtype, T.TimestampNTZType | T.DateType):  # wall time (a date: its midnight), taken as UTC
        return F.concat(F.date_format(c.cast("timestamp_ntz"), "yyyy-MM-dd'T'HH:mm:ss.SSS"), F.lit("Z"))
    if isinstance(dtype, T.StringType):
        return c
    raise ConfigError(f"{key}: event_time is {dtype.simpleString()}; map a timestamp, a date or an ISO-8601 "
                      "string (timestamp_seconds(col) or timestamp_millis(col) for epoch numbers)")


def _mapped(df: DataFrame, section: str, t: SourceTableConfig) -> DataFrame:
    """Their rows as one column per mapped bronze column (their types), every expression analysed here."""
    cols = []
    for ours, expr in t.columns.items():
        key = f"ingest.tables.{section}.columns.{ours}"
        try:
            c = F.expr(expr).alias(ours)
            df.select(c).schema  # noqa: B018 - analysed one at a time, so the error names its key
        except (AnalysisException, ParseException) as exc:
            raise _fail(key, f"{expr!r} cannot be evaluated on {source_name(t)}", exc) from None
        cols.append(c)
    try:
        out = df.select(*cols)
        out.schema  # noqa: B018
    except AnalysisException as exc:  # e.g. an aggregate mixed with row expressions
        raise _fail(f"ingest.tables.{section}.columns", "the expressions do not form one row per record", exc) \
            from None
    return out


def landing_frame(spark: SparkSession, cfg: Config, section: str, t: SourceTableConfig) -> DataFrame:
    """One configured table -> landing frame of its event type (see the module docstring)."""
    event_type = t.EVENT_TYPE
    schema = schemas.LANDING[event_type]
    m = _mapped(read_source(spark, cfg, section, t), section, t)
    types = {f.name: f.dataType for f in m.schema.fields}
    prefix = f"ingest.tables.{section}.columns"

    def src(name: str) -> Column:
        return F.col(f"`{name}`")

    # For each landing field: its typed value, its value as text (the wrong_type variant) and, for typed
    # fields, "a non-null value that does not cast".
    typed: dict[str, Column] = {}
    as_text: dict[str, Column] = {}
    bad: list[Column] = []

    def scalar(name: str, dtype: T.DataType) -> None:
        if name not in types:
            typed[name] = as_text[name] = F.lit(None).cast(dtype)
            return
        if not isinstance(types[name], T.AtomicType | T.NullType):
            raise ConfigError(f"{prefix}.{name}: is {types[name].simpleString()}; map a "
                              f"{'text' if isinstance(dtype, T.StringType) else dtype.simpleString()} value")
        if isinstance(dtype, T.StringType):
            typed[name] = as_text[name] = src(name).cast("string")
            return
        value = src(name).try_cast(dtype)
        try:
            m.select(value).schema  # noqa: B018 - e.g. a date has no cast to double
        except AnalysisException as exc:
            raise _fail(f"{prefix}.{name}", f"{types[name].simpleString()} cannot be read as "
                        f"{dtype.simpleString()}", exc) from None
        typed[name] = value
        as_text[name] = src(name).cast("string")
        bad.append(src(name).isNotNull() & value.isNull())

    for f in schema.fields:
        if f.name == "event_type":
            typed[f.name] = as_text[f.name] = F.lit(event_type)
        elif f.name == "event_time":
            if "event_time" not in types:  # required by the config: unreachable
                raise ConfigError(f"{prefix}.event_time: not mapped")
            typed[f.name] = as_text[f.name] = _event_time(src("event_time"), types["event_time"],
                                                          f"{prefix}.event_time")
        elif f.name == "seller":
            assert isinstance(f.dataType, T.StructType)
            for sf in f.dataType.fields:
                scalar(f"seller_{sf.name}", sf.dataType)
        elif f.name == "style_tags":
            if "style_tags" in types and not isinstance(types["style_tags"], T.ArrayType):
                raise ConfigError(f"{prefix}.style_tags: is {types['style_tags'].simpleString()}; map an array "
                                  "of strings, e.g. split(tags, ',')")
            tags = src("style_tags").cast(f.dataType) if "style_tags" in types else F.lit(None).cast(f.dataType)
            typed[f.name] = as_text[f.name] = F.coalesce(tags, F.array().cast(f.dataType))
        elif f.name != "event_id":
            scalar(f.name, f.dataType)

    if "event_id" in types:
        if not isinstance(types["event_id"], T.AtomicType | T.NullType):
            raise ConfigError(f"{prefix}.event_id: is {types['event_id'].simpleString()}; map a text value")
        event_id = src("event_id").cast("string")
    else:
        key_values = [(typed["event_time"] if k == "event_time" else as_text[k]).cast("string") for k in t.key]
        digest = F.sha2(F.to_json(F.array(F.lit(source_name(t)), *key_values)), 256)
        event_id = F.concat(F.lit(f"{ID_PREFIX}:{event_type}:"), digest)
    typed["event_id"] = as_text["event_id"] = event_id

    def payload(values: dict[str, Column]) -> Column:
        fields = []
        for f in schema.fields:
            if f.name == "seller":
                mapped = [f"seller_{n}" for n in SELLER_FIELDS if f"seller_{n}" in types]
                seller = F.struct(*[values[f"seller_{n}"].alias(n) for n in SELLER_FIELDS])
                fields.append((seller if mapped else F.lit(None).cast(f.dataType)).alias(f.name))
            else:
                fields.append(values[f.name].alias(f.name))
        return F.to_json(F.struct(*fields))

    any_bad = F.lit(False)
    for b in bad:
        any_bad = any_bad | b
    raw = F.when(any_bad, payload(as_text)).otherwise(payload(typed))
    return m.select(raw.alias("raw_payload"), F.lit(source_name(t)).alias("source_file"),
                    F.current_timestamp().alias("ingested_at"))


def tables_landing(spark: SparkSession, cfg: Config) -> dict[str, DataFrame]:
    """``{event_type: landing frame}`` for every configured table, all resolved and analysed before return."""
    tables: TablesConfig = cfg.ingest.tables
    frames: dict[str, DataFrame] = {}
    for section in type(tables).model_fields:
        t = getattr(tables, section)
        if t is not None:
            frame = landing_frame(spark, cfg, section, t)
            frame.schema  # noqa: B018 - analysed now: a mapping error fails before any write
            frames[t.EVENT_TYPE] = frame
    if not frames:
        raise ConfigError("ingest.tables: no table configured (ingest.tables.listings is required)")
    return frames
