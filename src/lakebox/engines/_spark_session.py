"""The SparkSession behind the ``spark`` engine.

One session per master URL per process. ``local[*]`` / ``local[N]`` and ``spark://`` masters use
classic PySpark (a JVM started by this process); ``sc://`` URLs use Spark Connect.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from typing import Any

from lakebox.errors import InvalidInput, LakeboxError, MissingDependency

__all__ = ["import_pyspark", "shipped_name", "shipped_path", "spark_session", "stop_sessions"]

_lock = threading.Lock()
_sessions: dict[str, Any] = {}

# Settings every lakebox session runs with: UTC so timestamps compare as in the local engine,
# Arrow transfers, and Parquet timestamps written as TIMESTAMP_MICROS (what Delta readers expect).
_CONF = {
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    "spark.sql.execution.arrow.pyspark.fallback.enabled": "false",
    "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.driver.extraJavaOptions": "-Duser.timezone=UTC",
    "spark.executor.extraJavaOptions": "-Duser.timezone=UTC",
}


def import_pyspark() -> Any:
    """Import ``pyspark``, or raise :class:`MissingDependency` naming the extra."""
    try:
        import pyspark
    except ImportError:
        raise MissingDependency("pyspark", "spark", 'The "spark" engine') from None
    return pyspark


def spark_session(master: str = "local[2]", *, conf: dict[str, str] | None = None) -> Any:
    """The SparkSession for ``master``, created on first use.

    Args:
        master: ``local[N]``, ``local[*]``, ``spark://host:port`` or ``sc://host:port``.
        conf: extra Spark settings for a new session.

    Example:
        >>> spark = spark_session("local[2]")  # doctest: +SKIP
        >>> spark.range(3).count()  # doctest: +SKIP
        3
    """
    if not master or not (
        master.startswith(("local", "spark://", "sc://", "yarn", "k8s://")) or master == "local"
    ):
        raise InvalidInput(
            f"Spark master {master!r} is not a Spark master URL; use local[N], local[*], "
            "spark://host:port or sc://host:port ([engine] spark_master in lakebox.toml)."
        )
    with _lock:
        session = _sessions.get(master)
        if session is not None and not _stopped(session):
            return session
        import_pyspark()
        # Workers must run this interpreter (the one with lakebox, pyarrow and the model's deps).
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
        from pyspark.sql import SparkSession

        settings = dict(_CONF)
        if master.startswith("local"):
            # A few shuffle partitions per core, not Spark's 200, for one machine's data.
            settings["spark.sql.shuffle.partitions"] = "8"
            # local mode runs every task in the driver: Spark's 1g heap runs out at ~10M rows
            settings["spark.driver.memory"] = "2g"
        settings.update(conf or {})
        if master.startswith("sc://"):
            builder = SparkSession.builder.remote(master)
            settings = {k: v for k, v in settings.items() if not k.startswith("spark.driver.")}
        else:
            builder = SparkSession.builder.master(master).appName("lakebox")
        for key, value in settings.items():
            builder = builder.config(key, value)
        try:
            session = builder.getOrCreate()
        except Exception as exc:  # JVM missing, cluster unreachable, ...
            message = " ".join(str(exc).split())[:500]
            raise LakeboxError(
                f"Cannot start a Spark session for master {master!r}: {message}. The spark "
                "engine needs Java 17+ (JAVA_HOME or java on PATH) for local and spark:// "
                "masters, or a reachable Spark Connect server for sc://."
            ) from None
        if not master.startswith("sc://"):
            session.sparkContext.setLogLevel("ERROR")
        _sessions[master] = session
        return session


def _stopped(session: Any) -> bool:
    context = getattr(session, "_sc", None)
    return context is not None and getattr(context, "_jsc", None) is None


def stop_sessions() -> None:
    """Stop every session this process started (tests and benchmarks call it at exit)."""
    with _lock:
        for session in _sessions.values():
            with contextlib.suppress(Exception):
                session.stop()
        _sessions.clear()


def shipped_name(path: str) -> str:
    """The name a local folder is shipped to executors under (unique per driver path)."""
    import hashlib

    return "lakebox-" + hashlib.sha1(os.path.abspath(path).encode()).hexdigest()[:16]


def shipped_path(path: str) -> str:
    """``path`` where it exists; else the executor's copy of the folder the driver shipped
    from ``path`` (``SparkEngine.ship``); else ``path`` unchanged."""
    if os.path.exists(path):
        return path
    try:
        from pyspark import SparkFiles

        candidate = SparkFiles.get(shipped_name(path))
    except Exception:  # not in a Spark worker
        return path
    return candidate if os.path.exists(candidate) else path
