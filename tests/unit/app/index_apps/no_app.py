"""Defect: no FunctionApp/DFApp instance at module level."""

import azure.functions as func


def handler(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse("no app registers me")
