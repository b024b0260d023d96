"""The console checks variable names in the browser before it sends them: with the same
rule the API applies, so a name the console lets through is never refused after a
round trip, and one it refuses would have been refused."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from winslow.pipeline.model import VARIABLE_PATTERN

JS = Path(__file__).resolve().parents[1] / "winslow" / "ui" / "static" / "js"


@pytest.mark.parametrize("script", ["project.js", "redo.js"])
def test_the_consoles_variable_name_check_is_the_apis(script: str) -> None:
    found = re.search(r"const VARIABLE_NAME = /(.+?)/;", (JS / script).read_text())
    assert found is not None, f"{script} no longer defines VARIABLE_NAME"
    assert found.group(1) == VARIABLE_PATTERN
