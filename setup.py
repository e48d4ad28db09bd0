"""The wheel's build step: the repository's `templates/` and `notebooks/` ship inside `hub_extension`.

Everything else is declared in pyproject.toml.  In a source checkout the
project reads both folders where they are; an installed wheel reads the copies
this step puts at `hub_extension/templates/` and `hub_extension/notebooks/`
(`hub_extension.resources` finds either).
"""
import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
# repository folder -> where it goes in the wheel
SHIPPED = {"templates": "hub_extension/templates", "notebooks": "hub_extension/notebooks"}
LEFT_OUT = shutil.ignore_patterns("__pycache__", "*.pyc", ".ipynb_checkpoints", ".DS_Store")


class BuildWithResources(build_py):
    """`build_py`, then the shipped folders copied into the build tree."""

    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return  # an editable install reads the checkout's own folders
        for source, target in SHIPPED.items():
            destination = Path(self.build_lib) / target
            if destination.exists():
                shutil.rmtree(destination)
            shutil.copytree(ROOT / source, destination, ignore=LEFT_OUT)


setup(cmdclass={"build_py": BuildWithResources})
