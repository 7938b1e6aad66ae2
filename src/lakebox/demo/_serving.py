"""Demo step: serve ``churn`` with Production and Staging side by side, over real HTTP."""

from __future__ import annotations

import collections
import socket
import threading
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lakebox.demo import DemoContext

TITLE = "Serve churn: Production 90% / Staging 10% on one endpoint"
ENDPOINT = "churn"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run(ctx: DemoContext) -> None:
    import httpx
    import uvicorn

    from lakebox.server import create_app

    ws = ctx.ws
    model_uri = ctx.state.get("model_uri")
    production = str(ctx.state.get("model_version", "1"))
    # a second version of the same model, as a retrained candidate would be
    staging = str(ws.models.register(model_uri, "churn").version) if model_uri else production
    ws.models.transition_stage("churn", version=production, stage="Production")
    ws.models.transition_stage("churn", version=staging, stage="Staging")
    if ENDPOINT in {e.name for e in ws.serving.list_endpoints()}:
        ws.serving.delete_endpoint(ENDPOINT)
    endpoint = ws.serving.create_endpoint(
        ENDPOINT,
        [
            {"entity_name": "churn", "stage": "Production"},
            {"entity_name": "churn", "stage": "Staging"},
        ],
        traffic={"Production": 90, "Staging": 10},
        inference_table="main.serving.churn_log",
        wait=False,
    )
    ctx.say(
        f"endpoint {endpoint.name!r}: churn v{production} Production 90%, "
        f"v{staging} Staging 10%; requests logged to main.serving.churn_log"
    )

    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(ws, mount_mlflow=False), host="127.0.0.1", port=port, log_level="warning"
        )
    )
    thread = threading.Thread(target=server.run, name="lakebox-demo-server", daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=url, timeout=30) as client:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                try:
                    if client.get("/ready").status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(0.05)
            answered: collections.Counter[str] = collections.Counter()
            row = {"sessions": 3.0, "spend": 25.0, "tickets": 2.0}
            for _ in range(40):
                response = client.post(
                    f"/serving-endpoints/{ENDPOINT}/invocations", json={"dataframe_records": [row]}
                )
                response.raise_for_status()
                answered[response.headers["served-model-name"]] += 1
            bad = client.post(
                f"/serving-endpoints/{ENDPOINT}/invocations",
                json={"dataframe_records": [{"sessions": "three"}]},
            )
            state = client.get(f"/api/2.0/serving-endpoints/{ENDPOINT}").json()["state"]
        ctx.say(
            f"POST {url}/serving-endpoints/{ENDPOINT}/invocations → "
            f"{response.json()} ({state['ready']})"
        )
        ctx.say(
            "40 requests answered by " + ", ".join(f"{k}: {v}" for k, v in sorted(answered.items()))
        )
        ctx.say(f"a bad request gets {bad.status_code}: {bad.json()['message']}")
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        ws.serving.runtime.logger.flush()
    ctx.state.update(serving_endpoint=ENDPOINT, serving_answers=dict(answered))
