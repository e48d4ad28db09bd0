"""Where the project's shipped files are: `templates/` and `notebooks/`.

In a source checkout they are the repository's own folders, beside
`hub_extension/`; an installed wheel carries copies inside the package
(`hub_extension/templates/`, `hub_extension/notebooks/`, put there by the
wheel's build step in `setup.py`).  Every lookup of either folder goes through
`templates()` / `notebooks()`, so code never guesses from its own path.

Standard library only: every side (the service, the CLI, a worker, a
participant's kernel) may import it.
"""
from __future__ import annotations

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
# A checkout holds the package next to the project's pyproject.toml.
CHECKOUT = PACKAGE_DIR.parent


class ResourceMissing(FileNotFoundError):
    """A shipped folder is in neither the package nor a checkout: the installation is broken."""


def _in_checkout(name: str) -> Path | None:
    folder = CHECKOUT / name
    if (CHECKOUT / "pyproject.toml").is_file() and folder.is_dir():
        return folder
    return None


def resource_dir(name: str) -> Path:
    """The folder `name` ("templates" or "notebooks") of this installation."""
    packaged = PACKAGE_DIR / name
    if packaged.is_dir():
        return packaged
    found = _in_checkout(name)
    if found is not None:
        return found
    raise ResourceMissing(
        f"the project's {name}/ folder is missing: looked in {packaged} (an installed wheel) and "
        f"{CHECKOUT / name} (a source checkout); reinstall jupyter-compete")


def templates(*parts: str) -> Path:
    """A path below `templates/`: `templates("service")`, `templates("bundles", "code")`."""
    return resource_dir("templates").joinpath(*parts)


def notebooks(*parts: str) -> Path:
    """A path below `notebooks/`: `notebooks("starting_kit_template.ipynb")`."""
    return resource_dir("notebooks").joinpath(*parts)


__all__ = ["ResourceMissing", "notebooks", "resource_dir", "templates"]
