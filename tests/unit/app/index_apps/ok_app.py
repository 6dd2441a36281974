"""A healthy DFApp: HTTP starter with a durable client, orchestrator, sub-orchestrator, activity, timer."""

import azure.durable_functions as df
import azure.functions as func

app = df.DFApp(http_auth_level=func.AuthLevel.FUNCTION)
COPY_ACTIVITY = "copy_page"


@app.route(route="backups/{cluster}/{filer}", methods=["POST"])
@app.durable_client_input(client_name="client")
async def start_backup(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    key = f"{req.route_params['cluster']}/{req.route_params.get('filer')}"
    instance_id = await client.start_new("backup", key, None)
    return client.create_check_status_response(req, instance_id)


@app.timer_trigger(schedule="%OK_APP_SCHEDULE%", arg_name="timer")
@app.durable_client_input(client_name="client")
async def nightly(timer: func.TimerRequest, client: df.DurableOrchestrationClient) -> None:
    await client.start_new("backup", None, None)


@app.orchestration_trigger(context_name="context")
def backup(context: df.DurableOrchestrationContext):
    yield context.call_activity(COPY_ACTIVITY, 1)
    yield context.call_activity_with_retry("copy_page", df.RetryOptions(1000, 3), 2)
    yield context.call_sub_orchestrator("verify", None)


@app.orchestration_trigger(context_name="context", orchestration="verify")
def verify_orchestrator(context: df.DurableOrchestrationContext):
    yield context.call_activity(copy_page, 3)


@app.activity_trigger(input_name="page")
def copy_page(page: int) -> int:
    return page


@app.route(route="items/{id:int}/{*rest}", methods=["GET", "HEAD"], auth_level=func.AuthLevel.ANONYMOUS)
def items(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(req.route_params.get("rest", ""))
