"""The lock, requirements/*.txt, is what installs everywhere: make's venv and both images.

pyproject.toml keeps ranges for people installing the package into their own environment;
the lock pins one version of everything, with hashes, within those ranges. Two clean
clones of one commit therefore install the same set: this environment must be the lock,
package for package.
"""

from __future__ import annotations

import importlib.metadata
import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]
DEV = ROOT / "requirements" / "dev.txt"
RUNTIME = ROOT / "requirements" / "runtime.txt"
PIN = re.compile(
    r"^([A-Za-z0-9_.-]+)==(\S+) \\\n((?:\s+--hash=sha256:[0-9a-f]{64}(?: \\)?\n)+)", re.M
)
NOT_LOCKED = {"pip", "setuptools", "wheel", "model-serving"}
"""The installer's own tools, and this project (installed from the working tree)."""


def pins(lock: Path) -> dict[str, str]:
    """Package (canonical name) -> its pinned version; only pins carrying hashes match."""
    return {canonicalize_name(name): version for name, version, _ in PIN.findall(lock.read_text())}


def requirements(extra: str | None = None) -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    listed = project["optional-dependencies"][extra] if extra else project["dependencies"]
    return [Requirement(line) for line in listed]


def pinned_lines(lock: Path) -> list[str]:
    return [line for line in lock.read_text().splitlines() if "==" in line]


@pytest.mark.parametrize(("lock", "extra"), [(RUNTIME, None), (DEV, None), (DEV, "dev")])
def test_the_lock_pins_every_dependency_within_pyprojects_range(
    lock: Path, extra: str | None
) -> None:
    locked = pins(lock)
    for requirement in requirements(extra):
        name = canonicalize_name(requirement.name)
        assert name in locked, f"{name} is not in {lock.name}: run make lock"
        assert Version(locked[name]) in requirement.specifier, (name, locked[name])


def test_every_pin_carries_hashes() -> None:
    for lock in (RUNTIME, DEV):
        assert len(pins(lock)) == len(pinned_lines(lock)), f"a pin of {lock.name} has no hash"


def test_the_runtime_lock_is_the_dev_locks_runtime_part() -> None:
    runtime, dev = pins(RUNTIME), pins(DEV)
    assert {name: dev.get(name) for name in runtime} == runtime


def installed_by_pip() -> dict[str, str]:
    """What pip installed, as imports see it: the first of each name on sys.path. (The test
    image's venv also sees the system's packages, and apt's docker-compose brings Debian's
    own, older requests or jsonschema, which pip did not install and nothing imports.)"""
    found: dict[str, str] = {}
    for dist in importlib.metadata.distributions():
        name = canonicalize_name(dist.metadata["Name"])
        if name not in found and name not in NOT_LOCKED:
            found[name] = dist.version if (dist.read_text("INSTALLER") or "").strip() else ""
    return {name: version for name, version in found.items() if version}


def test_this_environment_is_the_lock() -> None:
    assert installed_by_pip() == pins(DEV), "make rebuilds the venv when the lock changes"


def test_make_and_the_images_install_from_the_lock() -> None:
    makefile = (ROOT / "Makefile").read_text()
    assert "LOCK := requirements/dev.txt" in makefile
    assert "pip install --quiet --require-hashes --no-deps -r $(LOCK)" in makefile
    dockerfile = (ROOT / "Dockerfile").read_text()
    for lock in ("runtime", "dev"):
        assert f"--require-hashes --no-deps -r requirements/{lock}.txt" in dockerfile, lock
    assert "pyproject.toml']['project']" not in dockerfile, "no install from pyproject's ranges"
