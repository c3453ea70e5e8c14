"""docs/architecture.md names every module of the package: a newcomer finds each file's job there."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "src" / "spa_version"


def test_every_module_has_its_row() -> None:
    text = (ROOT / "docs" / "architecture.md").read_text()
    modules = sorted(
        path.relative_to(PACKAGE).as_posix() for path in PACKAGE.rglob("*.py") if path.name != "__init__.py"
    )
    assert len(modules) > 20  # the package was found
    assert [m for m in modules if f"`{m}`" not in text] == []


def test_every_test_folder_has_its_row() -> None:
    """docs/architecture.md, "Where the tests are", names every folder that holds tests."""
    text = (ROOT / "docs" / "architecture.md").read_text()
    folders = sorted(
        {path.parent.relative_to(ROOT).as_posix() + "/" for path in (ROOT / "tests").rglob("test_*.py")}
    )
    assert len(folders) > 10  # the tests were found
    assert [f for f in folders if f"`{f}`" not in text] == []
