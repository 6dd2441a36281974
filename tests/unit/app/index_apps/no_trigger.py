"""Defect: a function with an output binding and no trigger."""

import azure.functions as func

app = func.FunctionApp()


@app.function_name("lonely")
@app.queue_output(arg_name="msg", queue_name="work", connection="AzureWebJobsStorage")
def lonely(msg: func.Out[str]) -> None:
    msg.set("nobody calls me")
