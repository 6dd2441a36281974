"""Defect: an HTTP method the decorators do not know fails the import itself."""

import azure.functions as func

app = func.FunctionApp()


@app.route(route="things", methods=["FETCH"])
def things(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse("")
