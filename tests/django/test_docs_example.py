"""The example of docs/django.md, "Testing your project", runs as written and passes.

It is a module of its own: the example's store namespace (``memory://tests``, ``shop``)
is followed by a fresh listener thread here (tests/support/django_tests.py stops the thread
after each module), so its first request waits for the first read, as in a new project.
"""

from __future__ import annotations

import re
import unittest
from pathlib import Path

DOCS = Path(__file__).resolve().parents[2] / "docs" / "django.md"


def documented_example() -> str:
    """The first ``python`` block under docs/django.md's "## Testing your project"."""
    section = DOCS.read_text().split("\n## Testing your project\n", 1)[1]
    block = re.search(r"```python\n(.*?)```", section, re.S)
    assert block is not None, "no python block under 'Testing your project'"
    return block.group(1)


def run_example(source: str) -> unittest.TestResult:
    namespace: dict[str, object] = {"__name__": "docs_django_example"}
    exec(compile(source, str(DOCS), "exec"), namespace)
    case = namespace["DeployTests"]
    assert isinstance(case, type) and issubclass(case, unittest.TestCase)
    # This test project has no database (tests/django/settings.py); a user's has one.
    case.databases = set()  # type: ignore[attr-defined]
    result = unittest.TestResult()
    unittest.defaultTestLoader.loadTestsFromTestCase(case).run(result)
    return result


def test_the_documented_test_passes() -> None:
    result = run_example(documented_example())
    assert result.testsRun == 1
    assert result.wasSuccessful(), [text for _, text in result.errors + result.failures]


def test_the_example_would_catch_a_wrong_label() -> None:
    """The example's assertion can fail: expecting another label makes it fail."""
    source = documented_example()
    assert source.count('epoch, "v1")') == 1
    result = run_example(source.replace('epoch, "v1")', 'epoch, "v0")'))
    assert result.testsRun == 1 and len(result.failures) == 1, result.errors
