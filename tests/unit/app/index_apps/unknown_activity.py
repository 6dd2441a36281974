"""Defect: the orchestrator calls an activity name that nothing registers (a typo)."""

import azure.durable_functions as df

app = df.DFApp()


@app.orchestration_trigger(context_name="context")
def backup(context: df.DurableOrchestrationContext):
    yield context.call_activity("copy_pgae", 1)


@app.activity_trigger(input_name="page")
def copy_page(page: int) -> int:
    return page
