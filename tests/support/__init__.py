"""Shared fixtures and helpers of the test suite, loaded by tests/conftest.py as pytest plugins.

Fixture modules (listed in `pytest_plugins` of tests/conftest.py):
- `databases`: SQLite and a real PostgreSQL per test, platforms on them;
- `docker`: the real Docker engine, the runtime image (built once per session),
  a Docker executor and step specs;
- `hub`: one real JupyterHub with the competitions service per session, and its clients;
- `browser`: headless Chromium pages, with screenshots and the hub's log on failure;
- `builders`: the test world of competitions and people (`world`);
- `service_harness`: the service in-process over real HTTP, with a stand-in for
  the hub's token lookup (`server`);
- `lab`: a platform that really runs submissions behind the service (`running`).

Helper modules: `paths` (where the repository and the fixtures are),
`components` (skip or fail when a real component is missing), `bundles`
(bundle fixtures, zipping folders), `queues` (organizer queues with real
dispatcher and worker processes).
"""
