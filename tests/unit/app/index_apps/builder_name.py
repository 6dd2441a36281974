"""Defect: call_activity(builder) sends the Python name, not the activity= override it is registered under."""

import azure.durable_functions as df

app = df.DFApp()


@app.activity_trigger(input_name="page", activity="copy_page")
def copy_page_impl(page: int) -> int:
    return page


@app.orchestration_trigger(context_name="context")
def backup(context: df.DurableOrchestrationContext):
    yield context.call_activity(copy_page_impl, 1)
