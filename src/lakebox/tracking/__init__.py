"""Experiment tracking helpers on top of MLflow: table lineage."""

from lakebox.tracking._lineage import LakeboxTableSource, log_table_read, training_data

__all__ = ["LakeboxTableSource", "log_table_read", "training_data"]
