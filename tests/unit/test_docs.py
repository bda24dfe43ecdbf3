"""The README documents every setting the code reads, so the two cannot drift apart."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from service import errors
from service.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()


def test_every_setting_is_documented() -> None:
    documented = set(re.findall(r"`([A-Z][A-Z0-9_]+)`", README))
    variables = {f.metadata["env"] for f in dataclasses.fields(Settings)}
    assert variables - documented == set()


def test_readme_shows_the_two_commands() -> None:
    assert "make run" in README
    assert "make test" in README


def test_the_training_script_shown_is_the_one_the_tests_run() -> None:
    script = (ROOT / "examples" / "train.py").read_text()
    assert f"```python\n{script}```" in README


def test_every_error_code_is_in_the_error_table() -> None:
    """A client reading the README can look up any error code the service answers with."""
    table = {
        code
        for line in README.splitlines()
        if line.startswith("| 4") or line.startswith("| 5")
        for code in re.findall(r"`([a-z_]+)`", line)
    }
    codes = {cls.code for cls in errors.every_error() if cls.status_code < 500}
    assert codes - table == set()


def test_the_layout_map_names_every_module_in_its_package() -> None:
    """A newcomer finds any module from the README's map, in the row of its package."""
    rows = {
        match.group(1): match.group(2)
        for match in re.finditer(r"^\| `service/(\w+)/` \| (.*)$", README, flags=re.M)
    }
    packages = {p.parent.name for p in (ROOT / "service").glob("*/__init__.py")}
    assert set(rows) == packages
    for package in packages:
        modules = {
            p.name for p in (ROOT / "service" / package).glob("*.py") if p.name != "__init__.py"
        }
        assert {m for m in modules if f"`{m}`" not in rows[package]} == set(), package


def test_the_diagrams_name_files_that_exist() -> None:
    """The request path and the fleet's topology: every file a box names (after <br/>)."""
    diagrams = [block.split("```", 1)[0] for block in README.split("```mermaid\n")[1:]]
    assert len(diagrams) >= 2
    for path in re.findall(r"<br/>([\w/.]+)", "".join(diagrams)):
        assert (ROOT / path).exists() or (ROOT / "service" / path).exists(), path


def env_text(value: object) -> str:
    """A default as the environment would spell it (``25``, not ``25.0``)."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def test_the_settings_table_shows_the_defaults_settings_has() -> None:
    """The README's defaults are read, not copied: a default changed in Settings fails here."""
    shown = dict(re.findall(r"^\| `([A-Z_]+)`(?: / `_FILE`)? \| `([^`]+)` \|", README, flags=re.M))
    defaults = {
        f.metadata["env"]: env_text(f.default)
        for f in dataclasses.fields(Settings)
        if f.metadata["env"] in shown
    }
    assert len(defaults) >= 10
    assert {name: shown[name] for name in defaults} == defaults
