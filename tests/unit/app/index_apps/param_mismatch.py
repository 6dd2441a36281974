"""Defect: the activity trigger binds 'job' but the parameter is called 'jobs'."""

import azure.durable_functions as df

app = df.DFApp()


@app.activity_trigger(input_name="job")
def copy_page(jobs: dict) -> dict:
    return jobs
