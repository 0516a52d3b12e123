"""Where the emulator's data folders (``schemas/``, ``scenarios/``) are.

In a source checkout they sit beside the ``emulator`` package; a wheel carries them inside it, as
``emulator/_data/<name>`` (see ``[tool.setuptools]`` in pyproject.toml).
"""

from __future__ import annotations

from pathlib import Path


def data_dir(name: str) -> Path:
    package = Path(__file__).resolve().parent
    beside = package.parent / name
    return beside if beside.is_dir() else package / "_data" / name
