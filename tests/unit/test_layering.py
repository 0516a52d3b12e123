"""Pure modules never import I/O libraries: their logic stays testable without sockets, loops or processes."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PURE = [
    "models",
    "store",
    "commands",
    "schemas",
    "scenarios",
    "scenario_map",
    "yamlcheck",
    "steps",
    "segments",
    "script",
    "synth",
    "codecs",
    "frames",
    "ids",
    "media",
    "errors",
    "journal",
    "namespaces",
]
IO = {"asyncio", "starlette", "httpx", "websockets", "uvicorn", "subprocess"}
PACKAGE = Path(__file__).resolve().parents[2] / "emulator"


@pytest.mark.parametrize("module", PURE)
def test_pure_module_imports_no_io(module):
    tree = ast.parse((PACKAGE / f"{module}.py").read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
    assert not imported & IO, f"emulator/{module}.py imports {imported & IO}"
