"""Defect: an unbalanced brace in the route template."""

import azure.functions as func

app = func.FunctionApp()


@app.route(route="items/{id", methods=["GET"])
def item(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse("")
