"""Defect: day-of-week 7, which cron accepts but the host's NCrontab refuses."""

import azure.functions as func

app = func.FunctionApp()


@app.timer_trigger(schedule="0 0 2 * * 7", arg_name="timer")
def weekly(timer: func.TimerRequest) -> None:
    return None
