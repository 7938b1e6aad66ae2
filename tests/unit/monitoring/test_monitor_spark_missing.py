"""A monitor refresh on the spark engine without pyspark fails with the extra to install.

No JVM is started here."""

from __future__ import annotations

import sys
from pathlib import Path

import pyarrow as pa
import pytest

import lakebox
from lakebox.errors import MissingDependency
from lakebox.monitoring import Snapshot


def test_refresh_on_spark_without_pyspark_names_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a master no other test uses, so no engine built earlier in this process is reused
    ws = lakebox.Workspace(tmp_path / "ws", engine="spark", spark_master="local[1]-no-pyspark")
    try:
        ws.tables.write("main.mon.snap", pa.table({"x": [1.0, 2.0, 3.0], "plan": ["a", "b", "a"]}))
        ws.monitors.create("main.mon.snap", Snapshot())
        monkeypatch.setitem(sys.modules, "pyspark", None)  # import pyspark -> ImportError
        with pytest.raises(MissingDependency, match=r"pip install 'lakebox\[spark\]'"):
            ws.monitors.refresh("main.mon.snap")
        assert ws.monitors.list_refreshes("main.mon.snap")[0].state == "FAILED"
        assert not ws.tables.exists("main.mon.snap_profile_metrics")
    finally:
        ws.close()
