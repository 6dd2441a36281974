"""Defect: a parameter named 'context' that is not azure.functions.Context."""

import azure.functions as func

app = func.FunctionApp()


@app.route(route="who", methods=["GET"])
def who(req: func.HttpRequest, context: str) -> func.HttpResponse:
    return func.HttpResponse(context)
