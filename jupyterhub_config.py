"""JupyterHub configuration of the embedded default.

The hub listens on 127.0.0.1:8000, keeps its state next to the platform's in
$COMPETE_HOME, spawns single-user servers as local processes and uses the
Python `configurable-http-proxy` from PyPI (no Node.js needed).  Production
choices (PostgreSQL, DockerSpawner, an OAuth authenticator, the npm proxy with
TLS) are configuration: override the lines below in your own config file.
"""
import os
from pathlib import Path

c = get_config()  # noqa: F821 - provided by JupyterHub when it loads this file

home = Path(os.environ.get("COMPETE_HOME", Path.cwd() / "compete-home")).resolve()
home.mkdir(parents=True, exist_ok=True)

c.JupyterHub.bind_url = "http://127.0.0.1:8000"
c.JupyterHub.db_url = f"sqlite:///{home / 'jupyterhub.sqlite'}"
c.JupyterHub.cookie_secret_file = str(home / "jupyterhub_cookie_secret")
c.JupyterHub.pid_file = str(home / "jupyterhub.pid")
c.ConfigurableHTTPProxy.pid_file = str(home / "jupyterhub-proxy.pid")
c.JupyterHub.spawner_class = "simple"

# The platform's own settings (see hub_extension/config.py).
c.Compete.home = str(home)
c.Compete.executor = os.environ.get("COMPETE_EXECUTOR", "auto")
