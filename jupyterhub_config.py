"""JupyterHub configuration of the embedded default: `jupyterhub -f jupyterhub_config.py`.

One machine, nothing else to install: the hub listens on 127.0.0.1:8000, keeps
its SQLite file next to the platform's in $COMPETE_HOME, runs the competitions
service as a managed service, spawns single-user servers as local processes
and uses the Python `configurable-http-proxy` from PyPI (no Node.js; started by
`hub_extension.service.proxy`, which keeps its connections to the hub and the
service open).  People log in with local accounts; the first start creates demo accounts (printed on
every start, kept in $COMPETE_HOME/demo-accounts.txt) and loads the demo
competition.

Environment: COMPETE_HOME (state, default ./compete-home), COMPETE_HUB_IP and
COMPETE_HUB_PORT (the public address), COMPETE_CONFIG (a Python file of
`c.Compete.*` platform settings; default $COMPETE_HOME/compete_config.py when it
exists), COMPETE_DB_URL (the platform's database), COMPETE_DEMO=0 (no demo
accounts, no demo competition), COMPETE_LAB_DOCKER=0 (users' servers may not
use this machine's Docker: kits open in the servers' own Python, with the
default runtime's packages, instead of the judge's kernel; the competition
pages say which environment a participant gets).  The platform's settings are read as every
platform process reads them (`hub_extension.config.load_config`), and the
service gets the same file and home; the first start upgrades the platform's
database (`compete db upgrade`) before it loads the demo.

Participants work in JupyterLab: every user's server is `jupyterhub-singleuser`
of this Python environment (JupyterLab, and `hub_extension` importable in its
kernels), opening on /lab, with COMPETE_SERVICE_URL telling the participant
client where the service is.  The service itself may start users' servers and
write into them (the role `competitions-service`): that is how "Open in
JupyterLab" delivers a starting kit.

Production choices (PostgreSQL, DockerSpawner, an OAuth authenticator, the npm
proxy with TLS) are configuration: see "Production configuration" in the
README, which overrides lines of this file from a file of your own.
"""
import os
import sys
from pathlib import Path

from hub_extension import resources
from hub_extension.config import load_config
from hub_extension.db import upgrade_database
from hub_extension.embedded import (
    ACCOUNTS_FILE,
    DEMO_ADMIN,
    DEMO_ORGANIZER,
    describe_judge_kernels,
    first_start,
    format_demo_accounts,
    install_judge_kernels,
    judge_kernels_path,
)
from hub_extension.lifetime import OWNER_ENV, describe_process

c = get_config()  # noqa: F821 - provided by JupyterHub when it loads this file

SERVICE = "competitions"
# The scopes the service reads a request's role from (hub_extension/service/base.py).
# Admin powers: `admin-ui`, which only the hub's `admin` role holds (JupyterHub lets
# nobody add scopes to that role) and which opens nothing of the hub's REST API by
# itself, or ADMIN_SCOPE, for a role of your own.
HUB_ADMIN_SCOPE = "admin-ui"
ADMIN_SCOPE = "custom:competitions:admin"
CREATE_SCOPE = "custom:competitions:create"
ORGANIZE_SCOPE = "custom:competitions:organize"
# The platform's settings: c.Compete.home, else $COMPETE_HOME, else ./compete-home.
settings = load_config(home_fallback=Path.cwd() / "compete-home")
home = Path(settings.compete.home).resolve()
settings.compete.home = str(home)
home.mkdir(parents=True, exist_ok=True)
bin_dir = Path(sys.executable).parent


def _tool(name):
    """A console script of this Python environment (the hub may run without it on PATH)."""
    path = bin_dir / name
    return str(path) if path.exists() else name


# -- network ---------------------------------------------------------------------------------
hub_ip = os.environ.get("COMPETE_HUB_IP", "127.0.0.1")
hub_port = int(os.environ.get("COMPETE_HUB_PORT", "8000"))
c.JupyterHub.bind_url = f"http://{hub_ip}:{hub_port}"
# The proxy as processes on this machine reach it (the service, users' servers).
local_ip = "127.0.0.1" if hub_ip in ("", "0.0.0.0", "::") else hub_ip
local_proxy_url = f"http://{local_ip}:{hub_port}/"
# Internal addresses; a second hub on the same machine (tests) overrides them.
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = 8081
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:8001"
# Without --proxy-timeout, this proxy gives every request 20 seconds in all (its HTTP client's
# default), so opening a kit while the user's server starts on a busy machine, a large
# upload or a long download ended in "503 Timeout during request".  An hour, in milliseconds.
# `hub_extension.service.proxy` runs that proxy keeping its connections to the hub and the
# service open (it opened one per request: more CPU than the answer for polled leaderboards).
c.ConfigurableHTTPProxy.command = [sys.executable, "-m", "hub_extension.service.proxy",
                                   "--proxy-timeout", str(3600 * 1000)]
c.ConfigurableHTTPProxy.pid_file = str(home / "jupyterhub-proxy.pid")

# -- state -------------------------------------------------------------------------------------
c.JupyterHub.db_url = f"sqlite:///{home / 'jupyterhub.sqlite'}"
c.JupyterHub.cookie_secret_file = str(home / "jupyterhub_cookie_secret")
c.JupyterHub.pid_file = str(home / "jupyterhub.pid")

# -- the competitions service ----------------------------------------------------------------
# COMPETE_PUBLIC_URL: where the service reaches users' servers (through the proxy)
# to put starting kits into them.
service_env = {"COMPETE_HOME": str(home), "COMPETE_PUBLIC_URL": local_proxy_url}
if settings.file is not None:
    service_env["COMPETE_CONFIG"] = str(settings.file)
for name in ("COMPETE_DB_URL", "DOCKER_HOST"):
    if os.environ.get(name):
        service_env[name] = os.environ[name]
# This hub's process (this file runs in it): the service and the queue schedulers it starts
# stop once it is gone, even when it was killed and could tell them nothing.
service_env[OWNER_ENV] = describe_process()

c.JupyterHub.services = [
    {
        "name": SERVICE,
        "url": "http://127.0.0.1:10101",
        "command": [sys.executable, "-m", "hub_extension.service"],
        "environment": service_env,
        "display": True,  # listed in the hub's Services menu
        "oauth_no_confirm": True,  # part of the platform: no "authorize access" page
        # A browser login (the service's OAuth token) carries the role scopes its
        # user holds, and only those: the service reads roles from the token's scopes.
        "oauth_client_allowed_scopes": [HUB_ADMIN_SCOPE, ADMIN_SCOPE, CREATE_SCOPE, ORGANIZE_SCOPE],
        "info": {"description": "Competitions: pages, submissions and leaderboards"},
        "timeout": 90,
    }
]

# -- who may do what ---------------------------------------------------------------------------
# The service decides a request's role from the scopes of the token that made it,
# never from who its owner is: a token without these scopes acts as a participant,
# a hub admin's and an organizer's included.
c.JupyterHub.custom_scopes = {
    ADMIN_SCOPE: {
        "description": "Administer the competitions service: every competition, queue and submission "
                       "(hub admins have these powers through admin-ui; give this to a role of your own "
                       "for platform admins who are not hub admins).",
    },
    CREATE_SCOPE: {
        "description": "Create competitions and queues in the competitions service, and run the ones you "
                       "organize (members of the group 'organizers').",
    },
    ORGANIZE_SCOPE: {
        "description": "Run the competitions that name you as an organizer (every user).",
    },
}
# Every user may call the service (pages and REST API), and may run the competitions
# that name them.  The token of their single-user server (the JupyterLab widgets, the
# `compete` client) may call the service as a participant only: code running in a
# server (a notebook someone shared, a starting kit) never holds organizer or admin
# powers.  To let organizers' servers create competitions, add CREATE_SCOPE (kept
# only for users who hold it) to c.Spawner.server_token_scopes.
c.JupyterHub.extra_user_scopes = {f"access:services!service={SERVICE}", ORGANIZE_SCOPE}
c.Spawner.server_token_scopes = [
    "users:activity!user",
    "access:servers!server",
    f"access:services!service={SERVICE}",
    "read:users:name!user",
    "read:users:groups!user",
]
c.JupyterHub.load_roles = [
    {
        "name": "competition-organizer",
        "description": "Organizers: create competitions and run the ones they organize.",
        "scopes": [CREATE_SCOPE, f"access:services!service={SERVICE}"],
        "groups": ["organizers"],
    },
    {
        # "Open in JupyterLab": the service starts the participant's server when it
        # is not running (`servers`, which includes seeing whether it runs) and writes
        # the starting kit through the server's contents API (`access:servers`).
        # It does so only for the person who clicked, after checking they are
        # registered (or organize the competition).
        "name": "competitions-service",
        "description": "The competitions service: start users' servers and put starting kits into them.",
        "scopes": ["servers", "access:servers", "read:users:name"],
        "services": [SERVICE],
    },
]

# -- single-user servers -------------------------------------------------------------------------
# Set on SimpleLocalProcessSpawner, not Spawner: another spawner class (DockerSpawner)
# starts from its own defaults.
c.JupyterHub.spawner_class = "simple"
c.SimpleLocalProcessSpawner.home_dir_template = str(home / "users" / "{username}")
# JupyterLab 4 from this environment: its kernels run this Python, so
# `from hub_extension.widgets import Leaderboard, Submit` works with no set-up.
c.SimpleLocalProcessSpawner.cmd = [_tool("jupyterhub-singleuser")]
c.SimpleLocalProcessSpawner.default_url = "/lab"
# Where the participant client (`hub_extension.client`) finds the service.  A
# spawner whose servers run elsewhere (DockerSpawner) sets its own: see the README.
c.SimpleLocalProcessSpawner.environment = {"COMPETE_SERVICE_URL": f"{local_proxy_url}services/{SERVICE}/"}
# The judge's environment as kernels, one per runtime image here (when the servers may use
# Docker): installed in the home, found by the servers through JUPYTER_PATH.
print(describe_judge_kernels(install_judge_kernels(home, settings.compete)), file=sys.stderr, flush=True)
c.SimpleLocalProcessSpawner.environment["JUPYTER_PATH"] = os.pathsep.join(
    [judge_kernels_path(home)] + ([os.environ["JUPYTER_PATH"]] if os.environ.get("JUPYTER_PATH") else []))
# The front end's application object on `window.jupyterapp`: the Submit widget uses
# it to save the notebook before submitting it (see hub_extension/widgets.py).
c.SimpleLocalProcessSpawner.args = [
    "--LabApp.expose_app_in_browser=True",
    "--JupyterNotebookApp.expose_app_in_browser=True",
]
if hasattr(os, "geteuid") and os.geteuid() == 0:
    # Every user's server runs as root here: the embedded default is for trusted users.
    c.SimpleLocalProcessSpawner.args.append("--allow-root")

# -- pages ---------------------------------------------------------------------------------------
c.JupyterHub.template_paths = [str(resources.templates("hub"))]
c.JupyterHub.default_url = "/hub/home"

# -- people: local accounts and the demo -------------------------------------------------------
c.JupyterHub.authenticator_class = "hub_extension.embedded.LocalAccountAuthenticator"
c.LocalAccountAuthenticator.accounts_file = str(home / ACCOUNTS_FILE)
if os.environ.get("COMPETE_DEMO", "1") != "0":
    # The explicit upgrade step of the platform's database (as `compete db upgrade`), then the demo.
    print(upgrade_database(settings.compete.resolved_db_url()), file=sys.stderr, flush=True)
    demo_accounts = first_start(home, settings.compete)
    c.Authenticator.admin_users = {DEMO_ADMIN}
    c.JupyterHub.load_groups = {"organizers": {"users": [DEMO_ORGANIZER]}}
    c.JupyterHub.template_vars = {
        "announcement_login": f"Demo accounts and their passwords: {home / 'demo-accounts.txt'}",
    }
    print(format_demo_accounts(demo_accounts, f"http://{hub_ip}:{hub_port}/"), file=sys.stderr, flush=True)
else:
    c.JupyterHub.load_groups = {"organizers": {}}
