"""The embedded default without a running hub: accounts, the first start, the config file."""
from __future__ import annotations

import asyncio
import json
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from hub_extension.embedded import (
    ACCOUNTS_FILE,
    DEMO_ACCOUNTS_FILE,
    AccountError,
    AccountFile,
    LocalAccountAuthenticator,
    ensure_demo_accounts,
    first_start,
    main,
    read_demo_accounts,
)
from tests.support.paths import REPO


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_account_file_keeps_salted_hashes_only(tmp_path):
    accounts = AccountFile(tmp_path / ACCOUNTS_FILE)
    accounts.set_password("ada", "correct horse")
    accounts.set_password("bea", "correct horse")
    text = (tmp_path / ACCOUNTS_FILE).read_text()
    assert "correct horse" not in text
    records = json.loads(text)["accounts"]
    assert records["ada"]["hash"] != records["bea"]["hash"]  # salted: same password, other hash
    assert mode(tmp_path / ACCOUNTS_FILE) == 0o600
    assert accounts.check("ada", "correct horse")
    assert not accounts.check("ada", "correct horsE")
    assert not accounts.check("nobody", "correct horse")
    with pytest.raises(AccountError, match="at least 8"):
        accounts.set_password("ada", "short")
    with pytest.raises(AccountError, match="not a valid username"):
        accounts.set_password("../x", "long enough")


def test_the_authenticator_checks_the_account_file(tmp_path):
    accounts = AccountFile(tmp_path / ACCOUNTS_FILE)
    accounts.set_password("ada", "correct horse")
    auth = LocalAccountAuthenticator(accounts_file=str(accounts.path))
    assert auth.allow_all is True  # the file is the list of who may log in

    def login(username, password):
        return asyncio.run(auth.authenticate(None, {"username": username, "password": password}))

    assert login("ada", "correct horse") == "ada"
    assert login("Ada", "correct horse") == "ada"  # hub usernames are normalized to lower case
    assert login("ada", "wrong password") is None
    assert login("eve", "correct horse") is None
    assert login("ada", "") is None
    # A password set while the hub runs works at once.
    accounts.set_password("eve", "another one")
    assert login("eve", "another one") == "eve"


def test_demo_accounts_are_created_once_with_random_passwords(tmp_path):
    first = ensure_demo_accounts(tmp_path)
    assert [(a.role, a.username) for a in first] == [
        ("admin", "admin"), ("organizer", "organizer"), ("participant", "alice"), ("participant", "bob")]
    assert len({a.password for a in first}) == 4
    assert mode(tmp_path / DEMO_ACCOUNTS_FILE) == 0o600
    assert read_demo_accounts(tmp_path) == first
    accounts = AccountFile(tmp_path / ACCOUNTS_FILE)
    assert all(accounts.check(a.username, a.password) for a in first)
    # A restart keeps them, and so does deleting the list of passwords in clear.
    assert ensure_demo_accounts(tmp_path) == first
    (tmp_path / DEMO_ACCOUNTS_FILE).unlink()
    assert ensure_demo_accounts(tmp_path) == []
    assert all(accounts.check(a.username, a.password) for a in first)


def test_set_password_command_keeps_the_demo_list_true(tmp_path, monkeypatch, capsys):
    ensure_demo_accounts(tmp_path)
    monkeypatch.setattr(sys, "stdin", __import__("io").StringIO("a new secret\n"))
    assert main(["--home", str(tmp_path), "set-password", "alice", "--password-stdin"]) == 0
    alice = next(a for a in read_demo_accounts(tmp_path) if a.username == "alice")
    assert alice.password == "a new secret"
    assert AccountFile(tmp_path / ACCOUNTS_FILE).check("alice", "a new secret")
    assert main(["--home", str(tmp_path), "show", "--url", "http://127.0.0.1:8000/"]) == 0
    out = capsys.readouterr().out
    assert "http://127.0.0.1:8000/" in out and "a new secret" in out


def test_first_start_loads_the_demo_competition_once_owned_by_the_organizer(tmp_path, monkeypatch):
    from hub_extension.app import Actor, Platform

    for name in ("COMPETE_CONFIG", "COMPETE_DB_URL"):
        monkeypatch.delenv(name, raising=False)
    first_start(tmp_path)
    first_start(tmp_path)
    platform = Platform(home=str(tmp_path))
    try:
        comps = platform.list_competitions()
        assert [c["title"] for c in comps] == ["Demo: flower species"]
        detail = platform.competition_detail(comps[0]["slug"], Actor("organizer", groups=frozenset({"organizers"})))
        assert detail["is_organizer"] is True
        assert platform.competition_detail(comps[0]["slug"], Actor("alice"))["is_organizer"] is False
    finally:
        platform.close()


LOAD_CONFIG = """
import json, sys
from traitlets.config.loader import PyFileConfigLoader
c = PyFileConfigLoader("jupyterhub_config.py", path=sys.argv[1]).load_config()
hub = c.JupyterHub
print(json.dumps({
    "bind_url": hub.bind_url,
    "db_url": hub.db_url,
    "services": hub.services,
    "extra_user_scopes": sorted(hub.extra_user_scopes),
    "server_token_scopes": c.Spawner.server_token_scopes,
    "spawner_class": hub.spawner_class,
    "proxy_command": c.ConfigurableHTTPProxy.command,
    "template_paths": hub.template_paths,
    "load_groups": hub.load_groups,
    "load_roles": hub.load_roles,
    "custom_scopes": sorted(hub.custom_scopes),
    "admin_users": sorted(c.Authenticator.admin_users) if "admin_users" in c.Authenticator else [],
    "authenticator_class": hub.authenticator_class,
    "spawner_args": c.SimpleLocalProcessSpawner.args if "args" in c.SimpleLocalProcessSpawner else [],
    "spawner_keys": sorted(c.Spawner.keys()),
}))
"""


def load_hub_config(tmp_path: Path, **env: str) -> dict:
    """The values jupyterhub_config.py sets, loaded in a process of its own (it reads the environment)."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("COMPETE_")}
    full_env.update(env)
    proc = subprocess.run([sys.executable, "-c", LOAD_CONFIG, str(REPO)], env=full_env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_the_config_file_of_the_embedded_default(tmp_path):
    home = tmp_path / "home"
    cfg = load_hub_config(tmp_path, COMPETE_HOME=str(home))
    assert cfg["bind_url"] == "http://127.0.0.1:8000"
    assert cfg["db_url"] == f"sqlite:///{home / 'jupyterhub.sqlite'}"
    assert cfg["spawner_class"] == "simple"
    # The proxy's own default gives a request 20 s in all: opening a kit while a server starts took longer.
    # The PyPI configurable-http-proxy, with kept connections to its targets.
    assert cfg["proxy_command"] == [sys.executable, "-m", "hub_extension.service.proxy",
                                    "--proxy-timeout", "3600000"]
    assert cfg["template_paths"] == [str(REPO / "templates" / "hub")]
    assert cfg["authenticator_class"] == "hub_extension.embedded.LocalAccountAuthenticator"
    (service,) = cfg["services"]
    assert service["name"] == "competitions"
    assert service["command"] == [sys.executable, "-m", "hub_extension.service"]
    # COMPETE_PUBLIC_URL: the proxy, through which the service reaches users' servers (Open in JupyterLab).
    # COMPETE_HUB_PROCESS: the hub's pid and start time, so that the service and its queues stop with it.
    environment = dict(service["environment"])
    assert re.fullmatch(r"[0-9]+:[0-9.]+", environment.pop("COMPETE_HUB_PROCESS"))
    assert environment == {"COMPETE_HOME": str(home), "COMPETE_PUBLIC_URL": "http://127.0.0.1:8000/"}
    assert service["oauth_no_confirm"] is True and service["display"] is True
    # Roles come from the scopes of a request's token: every user may run the competitions
    # that name them, the hub's admin role holds the admin scope, organizers the create scope.
    assert cfg["custom_scopes"] == [f"custom:competitions:{s}" for s in ("admin", "create", "organize")]
    assert cfg["extra_user_scopes"] == ["access:services!service=competitions", "custom:competitions:organize"]
    roles = {role["name"]: role for role in cfg["load_roles"]}
    assert roles["competition-organizer"]["groups"] == ["organizers"]
    assert "custom:competitions:create" in roles["competition-organizer"]["scopes"]
    # A browser login (the service's OAuth token) carries the role scopes its user holds:
    # admin-ui is how a hub admin's token says so.
    assert sorted(service["oauth_client_allowed_scopes"]) == ["admin-ui"] + cfg["custom_scopes"]
    # Single-user servers' tokens call the service as participants only.
    assert "access:services!service=competitions" in cfg["server_token_scopes"]
    assert not [s for s in cfg["server_token_scopes"] if s.startswith("custom:")]
    assert cfg["load_groups"] == {"organizers": {"users": ["organizer"]}}
    assert cfg["admin_users"] == ["admin"]
    # The front end's app object, for the Submit widget's save before submitting.
    expose = ["--LabApp.expose_app_in_browser=True", "--JupyterNotebookApp.expose_app_in_browser=True"]
    assert cfg["spawner_args"] == expose + (["--allow-root"] if os.geteuid() == 0 else [])
    # Only what any spawner needs is set on Spawner: DockerSpawner must not inherit a local command.
    assert cfg["spawner_keys"] == ["server_token_scopes"]
    # The first start happened while the file loaded.
    assert (home / DEMO_ACCOUNTS_FILE).is_file()


def test_the_config_file_reads_address_settings_and_demo_switch_from_the_environment(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    (home / "compete_config.py").write_text("c = get_config()\nc.Compete.executor = 'process'\n")
    cfg = load_hub_config(tmp_path, COMPETE_HOME=str(home), COMPETE_HUB_IP="0.0.0.0", COMPETE_HUB_PORT="8123",
                          COMPETE_DB_URL="postgresql://u@db/compete", COMPETE_DEMO="0")
    assert cfg["bind_url"] == "http://0.0.0.0:8123"
    environment = dict(cfg["services"][0]["environment"])
    environment.pop("COMPETE_HUB_PROCESS")
    assert environment == {
        "COMPETE_HOME": str(home),
        "COMPETE_PUBLIC_URL": "http://127.0.0.1:8123/",  # a hub on all interfaces is reached on 127.0.0.1
        "COMPETE_CONFIG": str(home / "compete_config.py"),
        "COMPETE_DB_URL": "postgresql://u@db/compete",
    }
    assert cfg["load_groups"] == {"organizers": {}}
    assert cfg["admin_users"] == []
    assert not (home / DEMO_ACCOUNTS_FILE).exists()
