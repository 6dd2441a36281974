"""Defect: hour 25 in the timer's NCRONTAB schedule."""

import azure.functions as func

app = func.FunctionApp()


@app.timer_trigger(schedule="0 0 25 * * *", arg_name="timer")
def nightly(timer: func.TimerRequest) -> None:
    return None
