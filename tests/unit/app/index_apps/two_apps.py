"""Defect: two app instances; the worker cannot tell which one to index."""

import azure.durable_functions as df
import azure.functions as func

app = df.DFApp()
admin_app = func.FunctionApp()
