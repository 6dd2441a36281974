"""Defect: the function reads a route parameter its route does not declare."""

import azure.functions as func

app = func.FunctionApp()


@app.route(route="filers/{cluster}", methods=["GET"])
def filer(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(f"{req.route_params['cluster']}/{req.route_params['filer']}")
