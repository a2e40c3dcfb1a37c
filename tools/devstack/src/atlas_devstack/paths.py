"""Where the repository and its local state (`.atlas/`) live, found without any configuration."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

_REPO_ENV = "ATLAS_REPO_ROOT"
_HOME_ENV = "ATLAS_HOME"  # the Makefile exports it


def _is_repo_root(path: Path) -> bool:
    # The Makefile is the documented marker; pyproject.toml stands in until the Makefile exists.
    has_marker = (path / "Makefile").is_file() or (path / "pyproject.toml").is_file()
    return has_marker and (path / "libs").is_dir()


def repo_root() -> Path:
    """Return the repository root: the nearest ancestor holding `Makefile` and `libs/`."""
    override = os.environ.get(_REPO_ENV)
    if override:
        return Path(override).resolve()
    for start in (Path(__file__).resolve().parent, Path.cwd().resolve()):
        for candidate in (start, *start.parents):
            if _is_repo_root(candidate):
                return candidate
    raise RuntimeError(
        f"cannot find the ATLAS repository root (a directory with Makefile and libs/) above "
        f"{Path(__file__).resolve()} or {Path.cwd()}; set {_REPO_ENV}"
    )


def atlas_dir() -> Path:
    """Return the home of all local state (data, logs, jars): $ATLAS_HOME or `<repo>/.atlas`."""
    override = os.environ.get(_HOME_ENV)
    return Path(override).resolve() if override else repo_root() / ".atlas"


def repo_module(name: str, relative_path: str) -> ModuleType:
    """A Python file of the repository outside any installed package (`deploy/k8s/generate.py`,
    `bench/common.py`), loaded as the module `name`."""
    spec = importlib.util.spec_from_file_location(name, repo_root() / relative_path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {relative_path} as a module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module
