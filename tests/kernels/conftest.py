from tests.docker_fixtures import *  # noqa: F401,F403  (Docker fixtures: engine, runtime image)
