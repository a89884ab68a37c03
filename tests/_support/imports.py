"""What an import costs, seen from a fresh interpreter, and what a lazy package shows its type checkers."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path


def loaded_after(statement: str, watch: Sequence[str]) -> list[str]:
    """Which of ``watch`` a fresh interpreter has in sys.modules after ``statement``."""
    probe = f"import json, sys\n{statement}\nprint(json.dumps([m for m in {list(watch)!r} if m in sys.modules]))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True)
    return list(json.loads(out.stdout.strip().splitlines()[-1]))


def type_checking_names(module_file: str | Path) -> set[str]:
    """The names a module binds under ``if TYPE_CHECKING:`` (what type checkers see of a lazy package)."""
    tree = ast.parse(Path(module_file).read_text())
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            for stmt in node.body:
                assert isinstance(stmt, ast.ImportFrom)
                names.update(alias.asname or alias.name for alias in stmt.names)
    return names
