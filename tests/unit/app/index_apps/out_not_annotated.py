"""Defect: an output binding whose parameter is not annotated func.Out[...]."""

import azure.functions as func

app = func.FunctionApp()


@app.route(route="enqueue", methods=["POST"])
@app.queue_output(arg_name="msg", queue_name="work", connection="AzureWebJobsStorage")
def enqueue(req: func.HttpRequest, msg: str) -> func.HttpResponse:
    return func.HttpResponse("queued")
