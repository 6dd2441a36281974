"""Toy app with the routes `python -m devstack run` calls (backups, readd) and a timer, for the CLI tests."""

from __future__ import annotations

import json
import os

import azure.durable_functions as df
import azure.functions as func

app = df.DFApp(http_auth_level=func.AuthLevel.FUNCTION)

KNOWN_FILERS = {("c1", "f1"), ("c1", "f2")}


@app.route(route="backups/{cluster}/{filer}", methods=["POST"])
@app.durable_client_input(client_name="client")
async def start_backup(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    cluster, filer = req.route_params["cluster"], req.route_params["filer"]
    if (cluster, filer) not in KNOWN_FILERS:
        return func.HttpResponse(
            json.dumps({"error": f"unknown filer {cluster}/{filer}"}), status_code=404, mimetype="application/json"
        )
    if req.params.get("dryRun") == "true":
        return func.HttpResponse(json.dumps({"dry_run": True, "findings": []}), mimetype="application/json")
    instance_id = await client.start_new("toy_backup", f"backup-{cluster}-{filer}", {"filer": filer})
    return client.create_check_status_response(req, instance_id)


@app.route(route="filers/{cluster}/{filer}/readd", methods=["POST"])
@app.durable_client_input(client_name="client")
async def readd(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    cluster, filer = req.route_params["cluster"], req.route_params["filer"]
    if (cluster, filer) not in KNOWN_FILERS:
        return func.HttpResponse(
            json.dumps({"error": f"unknown filer {cluster}/{filer}"}), status_code=404, mimetype="application/json"
        )
    instance_id = await client.start_new("toy_readd", None, {"filer": filer, "fail": filer == "f2"})
    return client.create_check_status_response(req, instance_id)


@app.timer_trigger(schedule="0 0 * * * *", arg_name="timer")
@app.durable_client_input(client_name="client")
async def nightly(timer: func.TimerRequest, client: df.DurableOrchestrationClient) -> None:
    for cluster, filer in sorted(KNOWN_FILERS):
        await client.start_new("toy_backup", f"backup-{cluster}-{filer}", {"filer": filer})


@app.orchestration_trigger(context_name="context")
def toy_backup(context: df.DurableOrchestrationContext):
    data = context.get_input()
    context.set_custom_status({"step": "copy", "filer": data["filer"]})
    copied = yield context.call_activity("toy_copy", data["filer"])
    context.set_custom_status({"step": "done", "filer": data["filer"]})
    return copied


@app.orchestration_trigger(context_name="context")
def toy_readd(context: df.DurableOrchestrationContext):
    data = context.get_input()
    if data["fail"]:
        raise RuntimeError(f"re-add of {data['filer']} failed")
    yield context.call_activity("toy_copy", data["filer"])
    return "re-added"


@app.activity_trigger(input_name="filer")
def toy_copy(filer: str) -> dict:
    return {"filer": filer, "blobs": 3, "setting": os.environ.get("CLI_APP_SETTING")}
