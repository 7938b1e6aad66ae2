"""``lakebox serving ...``: model serving endpoints."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from lakebox.cli._common import console, friendly_errors, workspace
from lakebox.errors import InvalidInput

app = typer.Typer(help="Model serving endpoints.", no_args_is_help=True)

_ENTITY_HELP = (
    "Served model as MODEL:SELECTOR[=PERCENT], SELECTOR a version, a stage or @alias "
    "(repeatable), e.g. churn:Production=90 churn:Staging=10."
)


def _json_arg(text: str, what: str) -> Any:
    if text.startswith("@"):
        text = Path(text[1:]).read_text()
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"{what} is not valid JSON: {exc}.") from None


def _entities(specs: list[str], workers: int) -> tuple[list[dict[str, Any]], dict[str, int] | None]:
    entities: list[dict[str, Any]] = []
    traffic: dict[str, int] = {}
    for spec in specs:
        head, _, percent = spec.partition("=")
        model, sep, selector = head.partition(":")
        if not sep or not model or not selector:
            raise InvalidInput(f"--model {spec!r} must look like MODEL:SELECTOR[=PERCENT].")
        entity = {"entity_name": model, "entity_version": selector, "workers": workers}
        entities.append(entity)
        if percent:
            if not percent.isdigit():
                raise InvalidInput(f"--model {spec!r}: the percentage must be an integer.")
            traffic[selector.lstrip("@") if selector.startswith("@") else selector] = int(percent)
    return entities, traffic or None


def _show(record: Any) -> None:
    from lakebox.serving import endpoint_json

    console.print_json(json.dumps(endpoint_json(record)))


def _config_options(models: list[str] | None, config: str | None, workers: int) -> dict[str, Any]:
    if config is not None:
        return {"config": _json_arg(config, "--config")}
    if not models:
        raise InvalidInput("Give --model MODEL:SELECTOR (repeatable) or --config JSON.")
    entities, traffic = _entities(models, workers)
    return {"served_entities": entities, "traffic": traffic}


@app.command()
@friendly_errors
def create(
    name: str = typer.Argument(..., help="Endpoint name."),
    models: list[str] = typer.Option(None, "--model", "-m", help=_ENTITY_HELP),
    config: str = typer.Option(None, help="EndpointCoreConfigInput JSON (or @file)."),
    inference_table: str = typer.Option(None, help="Delta table logging requests/responses."),
    workers: int = typer.Option(1, help="Predict threads per served model."),
) -> None:
    """Create an endpoint and load its models (to check they load)."""
    record = workspace().serving.create_endpoint(
        name, inference_table=inference_table, **_config_options(models, config, workers)
    )
    console.print(
        f"Endpoint [bold]{record.name}[/]: {record.ready}"
        + (f" ({record.reason})" if record.reason else ""),
        highlight=False,
    )


@app.command("list")
@friendly_errors
def list_endpoints() -> None:
    """List endpoints with their state and served models."""
    table = Table("name", "state", "config update", "served models (traffic %)", "reason")
    for record in workspace().serving.list_endpoints():
        cfg = record.config or record.pending_config
        served = ", ".join(
            f"{e.name}={record.served_versions.get(e.name, '?')} ({cfg.routes.get(e.name, 0)}%)"
            for e in (cfg.served_entities if cfg else ())
        )
        table.add_row(record.name, record.ready, record.config_update, served, record.reason or "")
    console.print(table)


@app.command()
@friendly_errors
def get(name: str) -> None:
    """Print an endpoint as the REST API returns it."""
    _show(workspace().serving.get_endpoint(name))


@app.command()
@friendly_errors
def update(
    name: str = typer.Argument(..., help="Endpoint name."),
    models: list[str] = typer.Option(None, "--model", "-m", help=_ENTITY_HELP),
    config: str = typer.Option(None, help="EndpointCoreConfigInput JSON (or @file)."),
    inference_table: str = typer.Option(None, help="Delta table logging requests/responses."),
    workers: int = typer.Option(1, help="Predict threads per served model."),
) -> None:
    """Replace an endpoint's config (running servers swap it in without failing requests)."""
    record = workspace().serving.update_config(
        name, inference_table=inference_table, **_config_options(models, config, workers)
    )
    console.print(
        f"Endpoint [bold]{record.name}[/]: {record.ready}, {record.config_update}"
        + (f" ({record.reason})" if record.reason else ""),
        highlight=False,
    )


@app.command()
@friendly_errors
def delete(name: str) -> None:
    """Delete an endpoint."""
    workspace().serving.delete_endpoint(name)
    console.print(f"Deleted endpoint [bold]{name}[/]", highlight=False)


@app.command()
@friendly_errors
def query(
    name: str = typer.Argument(..., help="Endpoint name."),
    data: str = typer.Option(
        ..., "--data", "-d", help="Request JSON as for /invocations (or @file)."
    ),
    served_model: str = typer.Option(None, help="Call this served model directly."),
) -> None:
    """Score a request with the endpoint's models, in this process."""
    doc = _json_arg(data, "--data")
    if not isinstance(doc, dict):
        raise InvalidInput('--data must be a JSON object such as {"dataframe_records": [...]}.')
    result = workspace().serving.query(name, served_model=served_model, **doc)
    console.print_json(json.dumps(result))
