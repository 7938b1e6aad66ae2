"""The spark engine's errors: a missing pyspark names the extra; a bad master names the setting.

No JVM is started here."""

from __future__ import annotations

import sys

import pytest

from lakebox.engines import get_engine
from lakebox.errors import InvalidInput, MissingDependency


def test_missing_pyspark_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pyspark", None)  # import pyspark -> ImportError
    with pytest.raises(MissingDependency, match=r"pip install 'lakebox\[spark\]'"):
        get_engine("spark", spark_master="local[1]-missing-pyspark")


def test_a_bad_master_url_names_the_setting() -> None:
    pytest.importorskip("pyspark")
    from lakebox.engines._spark_session import spark_session

    with pytest.raises(InvalidInput, match=r"spark_master"):
        spark_session("mesos-ish://nowhere")
