"""The README documents every setting the code reads, so the two cannot drift apart."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from service.settings import Settings

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def test_every_setting_is_documented() -> None:
    documented = set(re.findall(r"`([A-Z][A-Z_]+)`", README))
    variables = {f.metadata["env"] for f in dataclasses.fields(Settings)}
    assert variables - documented == set()


def test_readme_shows_the_two_commands() -> None:
    assert "make run" in README
    assert "make test" in README
