"""Defect: the schedule names an app setting that is not set anywhere."""

import azure.functions as func

app = func.FunctionApp()


@app.timer_trigger(schedule="%VFXTDR_INDEXCHECK_UNSET_SCHEDULE%", arg_name="timer")
def nightly(timer: func.TimerRequest) -> None:
    return None
