"""Defect: an empty method list (the function would answer no request)."""

import azure.functions as func

app = func.FunctionApp()


@app.route(route="nothing", methods=[])
def nothing(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse("")
