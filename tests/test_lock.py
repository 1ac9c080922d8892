"""requirements.lock is what every machine installs: it must satisfy pyproject.toml's
ranges, and the environment the tests run in must be exactly it."""

from __future__ import annotations

import re
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent


def _locked() -> dict[str, tuple[str, str]]:
    """name -> (version, marker text) of every pin in the lock."""
    pins = {}
    for m in re.finditer(
        r"^([A-Za-z0-9_.-]+)==([^\s;\\]+)\s*(?:;\s*([^\\\n]+))?",
        (ROOT / "requirements.lock").read_text(),
        re.M,
    ):
        pins[canonicalize_name(m[1])] = (m[2], (m[3] or "").strip())
    return pins


def test_the_lock_satisfies_every_range_in_pyproject() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = [*project["dependencies"], *project["optional-dependencies"]["dev"]]
    pins = _locked()
    for text in wanted:
        req = Requirement(text)
        name = canonicalize_name(req.name)
        assert name in pins, f"{req.name} is in pyproject.toml but not in requirements.lock"
        assert req.specifier.contains(pins[name][0], prereleases=True), (
            f"requirements.lock pins {req.name}=={pins[name][0]}, outside {req.specifier}: "
            "run scripts/lock.sh"
        )


def test_the_environment_is_the_lock() -> None:
    env = default_environment()
    for name, (version, marker) in _locked().items():
        if marker and not Requirement(f"x; {marker}").marker.evaluate(env):
            continue
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            raise AssertionError(
                f"{name} is locked but not installed: run scripts/install.sh"
            ) from None
        assert installed == version, (
            f"{name} {installed} is installed, the lock says {version}: run scripts/install.sh "
            "(or scripts/test.sh --latest on purpose)"
        )
