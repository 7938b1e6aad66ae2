"""The ``score_batch`` job task type (registered through the ``lakebox.task_types`` entry
point)::

    tasks:
      - task_key: score
        lakebox_task:
          type: score_batch
          parameters: {model_uri: "models:/churn/Production", input_table: main.raw.customers,
                       output_table: main.preds.churn_daily, zorder_by: [customer_id]}
"""

from __future__ import annotations

from typing import Any

__all__ = ["score_batch_task"]


def score_batch_task(
    ws: Any, model_uri: str, input_table: str, output_table: str, **options: Any
) -> dict[str, Any]:
    """Run :func:`lakebox.deploy.score_table` in a job; returns what it did (task values)."""
    from lakebox.deploy import score_table

    result = score_table(model_uri, input_table, output_table, ws=ws, **options)
    print(
        f"scored {result.rows} row(s) of {result.input_table} v{result.input_version} with "
        f"{result.model_name or result.model_uri} v{result.model_version} into "
        f"{result.output_table} v{result.output_version} in {result.seconds:.1f} s"
    )
    return {
        "rows": result.rows,
        "output_version": result.output_version,
        "input_version": result.input_version,
        "model_version": result.model_version,
    }
