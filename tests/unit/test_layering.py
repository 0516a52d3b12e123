"""The layout's promise: the pure packages never reach I/O libraries, directly or through another module.

Checked by folder and transitively: a module in ``calls/`` or ``scenarios/`` (or one of ``media/``'s pure
modules) may import only pure emulator modules and no library that opens sockets, runs an event loop or serves
HTTP. So the command logic, the scenario language and the media engine stay testable without a loop or a socket.
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "emulator"
IO = {"asyncio", "starlette", "httpx", "websockets", "uvicorn"}
PURE_PACKAGES = ("calls", "scenarios")
PURE_MEDIA = (
    "bridge",
    "codecs",
    "conversation",
    "frames",
    "engine",
    "call_audio",
    "clip_audio",
    "playout",
    "library",
    "app_audio",
    "recordings",
    "rtp",
    "gather",
    "stream_faults",
    "worker_wire",
)


def _module_path(name: str) -> Path | None:
    parts = name.split(".")[1:]
    if not parts:
        return PACKAGE / "__init__.py"
    file = PACKAGE.joinpath(*parts).with_suffix(".py")
    if file.exists():
        return file
    init = PACKAGE.joinpath(*parts, "__init__.py")
    return init if init.exists() else None


@cache
def _imports(name: str) -> frozenset[str]:
    path = _module_path(name)
    assert path is not None, name
    found: set[str] = set()
    for node in _runtime_nodes(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            if node.module.startswith("emulator"):  # `from emulator.media import codecs` imports a module
                found |= {f"{node.module}.{a.name}" for a in node.names if _module_path(f"{node.module}.{a.name}")}
    return frozenset(found)


def _runtime_nodes(tree: ast.AST) -> list[ast.AST]:
    """Every node but those under ``if TYPE_CHECKING:`` (annotations only: nothing is imported at run time)."""
    nodes, todo = [], [tree]
    while todo:
        node = todo.pop()
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            todo.extend(node.orelse)
            continue
        nodes.append(node)
        todo.extend(ast.iter_child_nodes(node))
    return nodes


def _reach(name: str) -> dict[str, str]:
    """Every library reached from ``name``, with the emulator module that imports it."""
    seen, todo, libraries = {name}, [name], {}
    while todo:
        module = todo.pop()
        for imported in _imports(module):
            if imported.startswith("emulator"):
                if imported not in seen and _module_path(imported) is not None:
                    seen.add(imported)
                    todo.append(imported)
            else:
                libraries.setdefault(imported.split(".")[0], module)
    return libraries


def _pure_modules() -> list[str]:
    names = [
        "emulator." + ".".join(path.relative_to(PACKAGE).with_suffix("").parts)
        for folder in PURE_PACKAGES
        for path in sorted((PACKAGE / folder).rglob("*.py"))
    ]
    names += [f"emulator.media.{name}" for name in PURE_MEDIA]  # a renamed module fails loudly here
    return [name.removesuffix(".__init__") for name in names]


@pytest.mark.parametrize("module", _pure_modules())
def test_pure_module_reaches_no_io(module):
    reached = _reach(module)
    bad = {library: via for library, via in reached.items() if library in IO}
    assert not bad, f"{module} reaches I/O: " + ", ".join(f"{lib} (imported by {via})" for lib, via in bad.items())


def test_the_pure_set_is_not_empty():
    assert len(_pure_modules()) > 20
