"""The devstack command line: each command lives in the module that owns it, imported only when used."""

from __future__ import annotations

import argparse
import importlib
import sys

# command -> (module, one-line help). Each module defines add_arguments(parser) and main(args) -> int.
COMMANDS: dict[str, tuple[str, str]] = {
    "up": ("devstack.stack.lifecycle", "start the local stack (Azurite, Key Vault stand-in, identity, clusters)"),
    "down": ("devstack.stack.lifecycle", "stop exactly what `up` started, by pid"),
    "status": ("devstack.stack.lifecycle", "show what runs; with an instance id, a Durable instance's status"),
    "demo": ("devstack.demo.run", "run the main job end to end on the local stack"),
    "serve": ("devstack.durable.cli", "serve the app and the Durable HTTP API on loopback"),
    "run": ("devstack.durable.cli", "run a workflow to completion through the local Durable runner"),
    "trigger": ("devstack.durable.cli", "fire a timer-triggered function once"),
    "region": ("devstack.stack.region", "lose or restore a region of the stack: `region lose|restore REGION`"),
    "indexcheck": ("tools.indexcheck", "check that function_app indexes as the Functions host would"),
}


def build_parser(argv: list[str]) -> tuple[argparse.ArgumentParser, argparse.Namespace]:
    parser = argparse.ArgumentParser(prog="python -m devstack", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module, help_text) in COMMANDS.items():
        cmd = sub.add_parser(name, help=help_text, description=help_text)
        cmd.set_defaults(_module=module)
        if argv and argv[0] == name:  # only import the module whose command runs
            importlib.import_module(module).add_arguments(cmd, name)
    return parser, parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    _, args = build_parser(argv)
    module = importlib.import_module(args._module)
    return int(module.main(args) or 0)
