"""Run by test_module_registration under ``dagger run``: register the module, print its API.

It goes through the SDK's own registration entry point (``dagger.mod.cli.main``
with ``register=True``, what the engine's Python runtime calls), then loads the
module the engine registered and prints objects, functions and argument docs
as JSON.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import anyio
import dagger
from dagger import dag
from dagger.mod import cli


async def describe() -> dict[str, dict[str, object]]:
    code = await cli.main(register=True)
    if code is not None:
        raise SystemExit(code)
    module_id = json.loads(Path(os.environ["DAGGER_MODULE_FILE"]).read_text())
    api: dict[str, dict[str, object]] = {}
    async with await dagger.connect():
        module = dag.load_module_from_id(dagger.ModuleID(module_id))
        for type_def in await module.objects():
            obj = type_def.as_object()
            functions = {}
            for fn in await obj.functions():
                args = {await a.name(): await a.description() for a in await fn.args()}
                functions[await fn.name()] = {"description": await fn.description(), "args": args}
            api[await obj.name()] = {"description": await obj.description(), "functions": functions}
    return api


if __name__ == "__main__":
    print(json.dumps(anyio.run(describe)))
