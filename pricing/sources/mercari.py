"""Mercari Price Suggestion training file (``train.tsv``) -> landing events.

:func:`mercari_landing` returns, per event type (``listing_created``, ``listing_sold``), a DataFrame of
``raw_payload string, source_file string, ingested_at timestamp``: the shape the landing-file stream
produces, so :func:`pricing.sources.landing.parse`, ``to_bronze`` and ``to_quarantine`` apply unchanged.  Each
``raw_payload`` is a JSON object matching ``pricing.sources.schemas.LANDING[event_type]``, built in Spark with
``to_json`` (no Python UDFs, nothing collected except the header line and one ``max(train_id)``).

Mapping decisions (Mercari has fewer fields than the landing events):

- ``event_id`` is ``mercari:<event_type>:<train_id>``; ``listing_id`` is ``train_id``.
- **Synthetic event times.**  Mercari has no timestamps, but ingest needs an ``event_time`` and the
  feature and training jobs split on time.  Listings are spread deterministically over
  ``[start, start + days)`` by id: ``created = start + floor(train_id * days * 86400 / (max_train_id + 1))``
  seconds (``start`` naive means UTC), written as ``yyyy-MM-dd'T'HH:mm:ss.SSS'Z'`` in UTC whatever the
  session time zone; the sale is ``created + 1 day``.  These times carry no information: time-based
  splits on this data are effectively id-based splits.  Choose ``start + days + 1`` in the past, or ingest
  quarantines the latest events as ``future_timestamp``.
- **Unknown seller.**  Mercari has no seller: ``seller_id`` is the sentinel ``-1`` ("unknown seller", so
  ingest's ``missing_seller_id`` check passes) and ``seller`` is null.  Seller-history features are
  therefore meaningless on this source.
- ``title`` is ``name``; ``description`` is ``item_description`` with ``"No description yet"`` -> null.
  Mercari replaced prices in the text by ``[rm]``; the adapter removes every ``[rm]`` from title and
  description and collapses runs of whitespace to one space (a text left empty becomes null), so no
  placeholder token reaches the text features.
- ``brand`` is ``brand_name`` (empty -> null).  ``category_path`` slugs each level of ``category_name``
  (lower case, ``&`` -> ``and``, apostrophes dropped, other runs of non-alphanumerics -> ``-``) joined by
  ``/``; levels beyond the third are folded into the third (``Electronics/Computers & Tablets/iPad/Tablet/
  eBook Access`` -> ``electronics/computers-and-tablets/ipad-tablet-ebook-access``); empty -> null.
- ``condition``: ``item_condition_id`` 1..5 -> ``new_with_tags, like_new, good, used, fair``; any other
  value is passed through as the raw string, so ingest quarantines it as ``unknown_condition``.
- ``price`` is ``price`` as a double on both events (Mercari's price is the price the item sold at);
  ``currency`` is the ``currency`` argument (Mercari is USD).  Price ``0`` is kept (ingest says
  ``non_positive_price``); an empty price is left out (``missing_price``); a price that is not a number
  (``abc``) is written as a JSON string, so ingest says ``wrong_type``.
- ``shipping_paid_by``: ``shipping`` 1 -> ``seller``, 0 -> ``buyer``, anything else -> null.
- ``size``, ``colour``, ``material`` are null; ``style_tags`` is an empty array.
- **Standard CSV quoting.**  Fields are split on tabs the way Python's ``csv`` module and pandas read the
  file (Spark's CSV reader with ``quote='"'``, ``escape='"'``, ``multiLine``): a field that starts with a
  double quote is quoted and may hold tabs and newlines, ``""`` inside it is one ``"``; a double quote
  inside an unquoted field (``Apple iPad "mini"``) is an ordinary character.  Empty fields are empty
  strings.  ``multiLine`` makes each file one Spark task (a quoted newline can sit anywhere): split a
  very large export into several files under ``path`` to parallelise the read.
- **Malformed records are never dropped.**  A record with the wrong number of fields or a ``train_id``
  that is not a non-negative integer is emitted once, in the ``listing_created`` frame, with
  ``raw_payload`` = the raw record (for a wrong field count, the text as read; for a bad id, its fields
  joined by tabs), which ``parse`` classifies as ``malformed_json``; it yields no sale.  An unclosed
  quote runs on to the next double quote, as in any CSV reader.
- ``source_file`` is ``_metadata.file_path``; ``ingested_at`` is ``current_timestamp()``.

Only training files are accepted: a header without ``train_id`` and ``price`` (the test files have
``test_id`` and no price), or any header missing a Mercari column, raises :class:`ConfigError`.
Every file read under ``path`` starts with a header line (removed) with the same columns in the same
order as the first line read.
"""

from __future__ import annotations

from datetime import UTC, datetime

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from pricing.platform.errors import ConfigError
from pricing.platform.rows import first_value
from pricing.sources import schemas

COLUMNS = ("train_id", "name", "item_condition_id", "category_name", "brand_name", "price", "shipping",
           "item_description")
CONDITIONS = dict(zip(("1", "2", "3", "4", "5"), schemas.CONDITIONS, strict=True))
UNKNOWN_SELLER = -1
NO_DESCRIPTION = "No description yet"
EVENT_TYPES = ("listing_created", "listing_sold")
_NUMBER = r"^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?$"


def _header(spark: SparkSession, path: str) -> dict[str, int]:
    """Column name -> field index (and ``_n``: the number of fields) of the first line read; checks it is
    Mercari's training header."""
    first = spark.read.text(path).first()
    if first is None:
        raise ConfigError(f"Mercari file {path} is empty: expected a header line with {', '.join(COLUMNS)}.")
    line = first["value"]
    names = [n.strip() for n in line.lstrip("\ufeff").split("\t")]
    if "test_id" in names and "train_id" not in names and "price" not in names:
        raise ConfigError(f"{path} is a Mercari test file (test_id, no price column); the Mercari adapter "
                          "takes training files (train.tsv), whose sold prices are the labels.")
    missing = [c for c in COLUMNS if c not in names]
    if missing:
        raise ConfigError(f"{path} does not have the Mercari training header: missing column(s) "
                          f"{', '.join(missing)} (first line read: {line[:200]!r}).")
    return {n: names.index(n) for n in COLUMNS} | {"_n": len(names)}


def _iso_utc(epoch_seconds: Column) -> Column:
    """Epoch seconds -> ``yyyy-MM-ddTHH:mm:ss.000Z`` by integer arithmetic (independent of the session zone)."""
    day = F.floor(epoch_seconds / 86400)
    sod = epoch_seconds - day * 86400

    def two(c: Column) -> Column:
        return F.lpad(c.cast("string"), 2, "0")

    return F.concat(
        F.date_from_unix_date(day.cast("int")).cast("string"), F.lit("T"),
        two(F.floor(sod / 3600)), F.lit(":"), two(F.floor(sod % 3600 / 60)), F.lit(":"), two(sod % 60),
        F.lit(".000Z"),
    )


def _nonempty(c: Column) -> Column:
    return F.when(c != "", c)


def _clean_text(c: Column) -> Column:
    """Drop Mercari's ``[rm]`` price placeholders, collapse whitespace; empty -> null."""
    return _nonempty(F.trim(F.regexp_replace(F.regexp_replace(c, r"\[rm\]", ""), r"\s+", " ")))


def _slug(c: Column) -> Column:
    s = F.regexp_replace(F.regexp_replace(F.lower(c), "&", " and "), "['\u2019]", "")
    return _nonempty(F.regexp_replace(F.regexp_replace(s, r"[^\p{L}\p{N}]+", "-"), "^-+|-+$", ""))


def _category_path(c: Column) -> Column:
    levels = F.split(F.trim(c), "/", 3)  # at most 3 parts: the rest stays in the third and is slugged into it
    return _nonempty(F.concat_ws("/", *[_slug(F.try_element_at(levels, F.lit(i))) for i in (1, 2, 3)]))


def _condition(c: Column) -> Column:
    out = c
    for code, name in reversed(CONDITIONS.items()):
        out = F.when(F.trim(c) == code, F.lit(name)).otherwise(out)
    return out


def _payload(fields: list[tuple[str, Column]]) -> Column:
    """``to_json`` of the fields in order; on a non-numeric price, the same with the raw price string."""

    def js(price: Column) -> Column:
        return F.to_json(F.struct(*[(price if n == "price" else c).alias(n) for n, c in fields]))

    return F.when(F.col("bad_price"), js(F.col("price_raw"))).otherwise(js(F.col("price")))


_CORRUPT = "_corrupt_record"
CSV_OPTIONS = {"sep": "\t", "quote": '"', "escape": '"', "multiLine": "true", "header": "true",
               "mode": "PERMISSIVE", "columnNameOfCorruptRecord": _CORRUPT, "nullValue": "", "emptyValue": "",
               "ignoreLeadingWhiteSpace": "false", "ignoreTrailingWhiteSpace": "false", "encoding": "UTF-8"}
"""Spark CSV options that read a TSV as Python's ``csv.reader(f, delimiter="\\t")`` does (RFC 4180 quoting)."""


def read_tsv(spark: SparkSession, path: str, n_fields: int) -> DataFrame:
    """``_c0 .. _c<n-1>`` (strings, an empty field null), ``_corrupt_record`` (the raw text of a record with
    the wrong number of fields, else null) and ``source_file``; each file's header line is skipped."""
    schema = T.StructType([T.StructField(f"_c{i}", T.StringType()) for i in range(n_fields)]
                          + [T.StructField(_CORRUPT, T.StringType())])
    return (spark.read.schema(schema).options(**CSV_OPTIONS).csv(path)
            .select("*", F.col("_metadata.file_path").alias("source_file")))


def mercari_landing(
    spark: SparkSession, path: str, *, currency: str = "USD", start: datetime, days: int
) -> dict[str, DataFrame]:
    """Mercari training TSV at ``path`` -> ``{"listing_created": df, "listing_sold": df}`` landing frames."""
    if days < 1:
        raise ConfigError(f"days must be at least 1 to spread Mercari listings over time (got {days}).")
    start_utc = start.replace(tzinfo=UTC) if start.tzinfo is None else start.astimezone(UTC)
    start_epoch = int(start_utc.timestamp())
    idx = _header(spark, path)

    lines = read_tsv(spark, path, idx["_n"])

    def field(name: str) -> Column:
        return F.coalesce(F.col(f"_c{idx[name]}"), F.lit(""))  # the CSV reader reads an empty field as null

    tid = F.trim(field("train_id"))
    ok = F.col(_CORRUPT).isNull() & tid.rlike("^[0-9]{1,18}$")
    now = F.current_timestamp().alias("ingested_at")
    record = F.coalesce(F.col(_CORRUPT), F.concat_ws("\t", *[F.coalesce(F.col(f"_c{i}"), F.lit(""))
                                                            for i in range(idx["_n"])]))
    malformed = lines.filter(~ok).select(record.alias("raw_payload"), "source_file", now)

    rows = lines.filter(ok).withColumn("train_id", tid.cast("long"))
    max_id = first_value(rows.agg(F.max("train_id")))
    denom = (max_id if max_id is not None else 0) + 1
    dec = T.DecimalType(38, 0)
    offset = F.floor(F.col("train_id").cast(dec) * F.lit(days * 86400).cast(dec) / F.lit(denom).cast(dec))
    created_at = F.lit(start_epoch) + offset.cast("long")

    price_raw = _nonempty(F.trim(field("price")))
    shipping = F.trim(field("shipping"))
    # Intermediate columns first, so the two to_json variants below share them instead of repeating them.
    rows = rows.select(
        "train_id", "source_file",
        _iso_utc(created_at).alias("created_at"),
        _iso_utc(created_at + 86400).alias("sold_at"),
        _clean_text(field("name")).alias("title"),
        F.when(F.trim(field("item_description")) != NO_DESCRIPTION, _clean_text(field("item_description")))
        .alias("description"),
        _nonempty(F.trim(field("brand_name"))).alias("brand"),
        _category_path(field("category_name")).alias("category_path"),
        _condition(field("item_condition_id")).alias("condition"),
        price_raw.alias("price_raw"),
        (price_raw.isNotNull() & ~price_raw.rlike(_NUMBER)).alias("bad_price"),
        F.when(shipping == "1", "seller").when(shipping == "0", "buyer").alias("shipping_paid_by"),
    ).withColumn("price", F.when(~F.col("bad_price"), F.col("price_raw").try_cast("double")))

    def envelope(event_type: str, event_time: str) -> list[tuple[str, Column]]:
        return [
            ("event_id", F.concat(F.lit(f"mercari:{event_type}:"), F.col("train_id").cast("string"))),
            ("event_type", F.lit(event_type)),
            ("event_time", F.col(event_time)),
            ("listing_id", F.col("train_id")),
        ]

    seller_type = schemas.LANDING["listing_created"]["seller"].dataType
    created_fields = [
        *envelope("listing_created", "created_at"),
        ("seller_id", F.lit(UNKNOWN_SELLER).cast("long")),
        ("seller", F.lit(None).cast(seller_type)),
        *[(c, F.col(c)) for c in ("title", "description", "brand", "category_path", "condition")],
        ("size", F.lit(None).cast("string")),
        ("colour", F.lit(None).cast("string")),
        ("material", F.lit(None).cast("string")),
        ("style_tags", F.array().cast("array<string>")),
        ("price", F.col("price")),
        ("currency", F.lit(currency)),
        ("shipping_paid_by", F.col("shipping_paid_by")),
    ]
    sold_fields = [*envelope("listing_sold", "sold_at"), ("price", F.col("price")), ("currency", F.lit(currency))]
    for event_type, fields in (("listing_created", created_fields), ("listing_sold", sold_fields)):
        names = [f.name for f in schemas.LANDING[event_type].fields]
        if [n for n, _ in fields] != names:
            raise AssertionError(f"{event_type} payload fields drifted from the landing schema")

    def frame(fields: list[tuple[str, Column]]) -> DataFrame:
        return rows.select(_payload(fields).alias("raw_payload"), "source_file", now)

    return {
        "listing_created": frame(created_fields).unionByName(malformed),
        "listing_sold": frame(sold_fields),
    }
