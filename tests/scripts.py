"""Load a script of the repository's scripts/ or benchmarks/ folder as a module, for its tests.

The scripts are not part of the installed package, so a test reads one from its file. Each call
executes the file afresh and registers the new module in sys.modules under the script's name
(dataclasses look a class's module up there, and a script that imports another by name gets it).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]


def load_script(folder: str, name: str) -> ModuleType:
    """ROOT/folder/name.py as a fresh module named `name` (folder: "scripts" or "benchmarks")."""
    path = ROOT / folder / f"{name}.py"
    if not path.is_file():
        raise FileNotFoundError(f"no script {folder}/{name}.py")
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
