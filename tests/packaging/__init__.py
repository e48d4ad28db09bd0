"""Tests of the project as installed from its wheel."""
