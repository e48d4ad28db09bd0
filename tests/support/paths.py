"""Where things are: the repository, the demo competition and the test fixtures."""
from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TESTS = REPO / "tests"
FIXTURES = TESTS / "fixtures"
BUNDLE_FIXTURES = FIXTURES / "bundles"
TEMPLATES = REPO / "templates"
DEMO = TEMPLATES / "demo"
