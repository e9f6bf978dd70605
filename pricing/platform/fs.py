"""State files through the Spark session's Hadoop FileSystem, never through the driver's own disk.

A path such as ``/Volumes/<catalog>/<schema>/<volume>/landing`` or ``abfss://...`` names the same storage for the
driver, every executor and every cluster only through the FileSystem Spark itself writes with: the driver's
``pathlib`` sees a FUSE mount at best (``/Volumes`` on Databricks) and, for a file an executor has just written,
need not see it at all.  So whatever touches files that Spark jobs wrote (renaming a write's part files) goes
through here; locally the same calls reach the local file system, so behaviour is identical.

Small files only the driver writes and reads (a manifest, a marker) may use ``pathlib`` on a ``/Volumes`` path;
anything bigger or shared with executors uses these helpers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from py4j.protocol import Py4JJavaError  # type: ignore[import-untyped]
from pyspark.sql import SparkSession


def _jvm(spark: SparkSession) -> Any:
    jvm = spark.sparkContext._jvm
    if jvm is None:  # only a stopped session has none
        raise RuntimeError("the Spark session has no JVM (stopped?): state files need a live session")
    return jvm


def filesystem(spark: SparkSession, path: str | Path) -> tuple[Any, Any]:
    """``(FileSystem, Path)`` of the Hadoop FileSystem that serves ``path`` in this session."""
    hpath = _jvm(spark).org.apache.hadoop.fs.Path(str(path))
    conf = spark.sparkContext._jsc.hadoopConfiguration()
    return hpath.getFileSystem(conf), hpath


def glob(spark: SparkSession, pattern: str | Path) -> list[str]:
    """The paths matching a glob ``pattern`` (Hadoop syntax: ``*``, ``?``, ``[...]``, ``{a,b}``), sorted."""
    fs, hpattern = filesystem(spark, pattern)
    statuses = fs.globStatus(hpattern)
    return sorted(str(s.getPath().toString()) for s in statuses or [])


def rename(spark: SparkSession, src: str, dst: str) -> None:
    """Rename ``src`` to ``dst`` (both full paths as :func:`glob` returns them); fails if the store refuses."""
    fs, hsrc = filesystem(spark, src)
    hdst = _jvm(spark).org.apache.hadoop.fs.Path(dst)
    if not fs.rename(hsrc, hdst):
        raise OSError(f"could not rename {src} to {dst} (does {dst} exist already?)")


def exists(spark: SparkSession, path: str | Path) -> bool:
    fs, hpath = filesystem(spark, path)
    return bool(fs.exists(hpath))


def read_text(spark: SparkSession, path: str | Path) -> str | None:
    """The UTF-8 text of a small file, or None when there is no such file."""
    fs, hpath = filesystem(spark, path)
    jvm = _jvm(spark)
    try:
        stream = fs.open(hpath)
    except Py4JJavaError:
        if not fs.exists(hpath):
            return None
        raise
    try:
        reader = jvm.java.io.BufferedReader(jvm.java.io.InputStreamReader(stream, "UTF-8"))
        lines = []
        line = reader.readLine()
        while line is not None:
            lines.append(line)
            line = reader.readLine()
        return "\n".join(lines)
    finally:
        stream.close()


def write_text(spark: SparkSession, path: str | Path, text: str, overwrite: bool = True) -> bool:
    """Write a small file in one piece.  With ``overwrite=False`` the file is created only if absent (the store's
    conditional create): False, and nothing written, when it exists already."""
    fs, hpath = filesystem(spark, path)
    try:
        out = fs.create(hpath, overwrite)
    except Py4JJavaError:
        if not overwrite and fs.exists(hpath):
            return False
        raise
    try:
        out.write(bytearray(text.encode("utf-8")))
    finally:
        out.close()
    return True


def delete(spark: SparkSession, path: str | Path) -> bool:
    """Delete a file (not a folder); False when there was none."""
    fs, hpath = filesystem(spark, path)
    return bool(fs.delete(hpath, False))
