"""The import layers of src/spa_version: no upward import, no cycle (pyproject.toml,
[tool.importlinter]; docs/architecture.md, "Layers")."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    """Every import inside the package, lazy ones (in a function) included."""
    return grimp.build_graph("spa_version", cache_dir=None)


# In a process of its own: import-linter configures logging (logging.config.dictConfig),
# which would disable the loggers of the tests that run after it here.
LINT = """
import sys
from importlinter.cli import lint_imports
sys.exit(lint_imports(config_filename="pyproject.toml", no_cache=True, no_logo=True))
"""


def test_the_layer_contracts_are_kept() -> None:
    """import-linter's contracts: each module imports only from layers below its own, at
    the top and inside the stores, and no package's modules import each other in a circle."""
    done = subprocess.run([sys.executable, "-c", LINT], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "kept, 0 broken" in done.stdout, done.stdout


def test_no_module_imports_a_package_it_is_in(graph: grimp.ImportGraph) -> None:
    """A module never imports its own package or one above it (the layers cannot see
    that: a package is not a layer of itself)."""
    upward = sorted(
        (module, imported)
        for module in graph.modules
        for imported in graph.find_modules_directly_imported_by(module)
        if module.startswith(imported + ".")
    )
    assert upward == []


def test_no_import_cycle_between_modules(graph: grimp.ImportGraph) -> None:
    """No module reaches itself through the modules it imports, directly or not."""
    cycles = sorted(
        (module, imported)
        for module in graph.modules
        for imported in graph.find_modules_directly_imported_by(module)
        if graph.chain_exists(importer=imported, imported=module)
    )
    assert cycles == []
