"""The test suite's shared fixtures, from the modules of tests/support/ (see its docstring).

Each folder's own conftest.py holds only what is local to that folder.
"""
pytest_plugins = [
    "tests.support.databases",
    "tests.support.docker",
    "tests.support.hub",
    "tests.support.browser",
    "tests.support.builders",
    "tests.support.service_harness",
    "tests.support.lab",
    "tests.support.object_store",
    "tests.support.mail",
]
