"""Defect: two functions answer GET on the same route template."""

import azure.functions as func

app = func.FunctionApp()


@app.route(route="backups/{id}", methods=["GET"])
def get_backup(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse("")


@app.route(route="backups/{name}", methods=["GET", "DELETE"])
def get_backup_by_name(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse("")
