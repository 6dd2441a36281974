"""Defect: a timer trigger annotated as an HTTP request."""

import azure.functions as func

app = func.FunctionApp()


@app.timer_trigger(schedule="0 0 2 * * *", arg_name="timer")
def nightly(timer: func.HttpRequest) -> None:
    return None
