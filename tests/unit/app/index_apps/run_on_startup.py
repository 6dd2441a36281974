"""Defect: run_on_startup would start a DR run on every restart and scale-out."""

import azure.functions as func

app = func.FunctionApp()


@app.timer_trigger(schedule="0 0 2 * * *", arg_name="timer", run_on_startup=True)
def nightly(timer: func.TimerRequest) -> None:
    return None
