"""Defect: two functions registered under one name."""

import azure.durable_functions as df

app = df.DFApp()


@app.function_name("backup")
@app.activity_trigger(input_name="page")
def copy_page(page: int) -> int:
    return page


@app.function_name("backup")
@app.activity_trigger(input_name="page")
def verify_page(page: int) -> int:
    return page
