"""Defect: an HTTP function whose return annotation the http output binding refuses."""

import azure.functions as func

app = func.FunctionApp()


@app.route(route="status", methods=["GET"])
def status(req: func.HttpRequest) -> dict:
    return {"status": "ok"}
