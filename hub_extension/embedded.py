"""The embedded default of the hub: local accounts, demo accounts and the first start.

`jupyterhub_config.py` uses this module to run JupyterHub on one machine with
nothing else to install:

- `LocalAccountAuthenticator` logs people in against salted scrypt hashes kept
  in `$COMPETE_HOME/hub-accounts.json` (JupyterHub's own authenticators need
  system users (PAM) or share one password between everyone);
- `first_start(home)` creates the demo accounts (an admin, an organizer and two
  participants) with random passwords the first time, writes them to
  `$COMPETE_HOME/demo-accounts.txt` (mode 0600), and loads the demo competition
  from `templates/demo` with the organizer as its owner;
- `install_judge_kernels(home, config)` gives users' servers the judge's
  environment as kernels (`hub_extension.cli_kernel.install_for_servers`): one
  per runtime image on the machine, whenever a Docker engine answers (users'
  servers run as the hub's user, on this machine), found by the servers
  through JUPYTER_PATH (`judge_kernels_path`).  `COMPETE_LAB_DOCKER=0` in the
  hub's environment says users' servers may not use Docker: no judge kernels,
  and the notebooks run in the servers' own Python, which has the default
  runtime's packages (scripts/bootstrap.sh installs them).

`python -m hub_extension.embedded set-password NAME` adds an account or sets a
new password; `python -m hub_extension.embedded show` prints the demo accounts;
`stop-leftovers` stops what a hub that died without cleaning up left running.
"""
from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime as dt
import getpass
import hashlib
import hmac
import json
import os
import secrets
import sys
from pathlib import Path
from typing import Optional, Sequence

import psutil
from jupyterhub.auth import Authenticator
from traitlets import Unicode, default

from .config import Compete, default_home, load_config
from .judge_specs import servers_folder

ACCOUNTS_FILE = "hub-accounts.json"
DEMO_ACCOUNTS_FILE = "demo-accounts.txt"

# Demo accounts: (role, username).  The organizer is in the hub group
# `organizers` and owns the demo competition; the admin is a hub admin.
DEMO_ADMIN = "admin"
DEMO_ORGANIZER = "organizer"
DEMO_PARTICIPANTS = ("alice", "bob")
DEMO_ROLES = (("admin", DEMO_ADMIN), ("organizer", DEMO_ORGANIZER)) + tuple(
    ("participant", name) for name in DEMO_PARTICIPANTS
)

# scrypt parameters: about 50 ms per check on one core, 16 MiB of memory.
_SCRYPT = {"n": 2**14, "r": 8, "p": 1}
_MIN_PASSWORD_LENGTH = 8


def embedded_home() -> Path:
    """The home of the embedded default: $COMPETE_HOME, else ./compete-home."""
    return default_home(fallback=Path.cwd() / "compete-home").resolve()


class AccountError(ValueError):
    """A username or password the account file refuses."""


def hash_password(password: str, *, salt: Optional[bytes] = None) -> dict:
    """A salted scrypt hash of `password`, as a JSON-able record."""
    salt = salt if salt is not None else secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, dklen=32, **_SCRYPT)
    return {"scheme": "scrypt", **_SCRYPT, "salt": salt.hex(), "hash": digest.hex()}


def verify_password(password: str, record: dict) -> bool:
    if record.get("scheme") != "scrypt":
        return False
    digest = hashlib.scrypt(
        password.encode("utf-8"),
        salt=bytes.fromhex(record["salt"]),
        dklen=len(bytes.fromhex(record["hash"])),
        n=record["n"], r=record["r"], p=record["p"],
    )
    return hmac.compare_digest(digest.hex(), record["hash"])


def _write_private(path: Path, text: str) -> None:
    """Write `text` to `path` readable by its owner only, replacing it atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


class AccountFile:
    """Username -> password hash, in one JSON file readable by its owner only."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def load(self) -> dict[str, dict]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        return dict(data.get("accounts", {}))

    def usernames(self) -> list[str]:
        return sorted(self.load())

    def set_password(self, username: str, password: str) -> None:
        if not username or username != username.strip() or "/" in username:
            raise AccountError(f"{username!r} is not a valid username")
        if len(password) < _MIN_PASSWORD_LENGTH:
            raise AccountError(f"a password needs at least {_MIN_PASSWORD_LENGTH} characters")
        accounts = self.load()
        accounts[username] = hash_password(password)
        _write_private(self.path, json.dumps({"version": 1, "accounts": accounts}, indent=1) + "\n")

    def check(self, username: str, password: str) -> bool:
        record = self.load().get(username)
        if record is None:
            # Spend the same time as for a real account: no username probing by timing.
            verify_password(password, hash_password("not-a-password", salt=b"\0" * 16))
            return False
        return verify_password(password, record)


class LocalAccountAuthenticator(Authenticator):
    """Logs in the accounts of a local password file (salted scrypt hashes).

    For one machine and a handful of people (the embedded default).  The file
    is read on every login, so `python -m hub_extension.embedded set-password`
    takes effect without restarting the hub.  Production uses an OAuth
    authenticator instead (see the README).
    """

    accounts_file = Unicode(
        help="Path of the JSON file of usernames and password hashes. "
        "Default: hub-accounts.json in $COMPETE_HOME, else in ./compete-home.",
    ).tag(config=True)

    @default("accounts_file")
    def _accounts_file_default(self) -> str:
        return str(embedded_home() / ACCOUNTS_FILE)

    @default("allow_all")
    def _allow_all_default(self) -> bool:
        # Only accounts of the file can log in at all: the file is the allow list.
        return True

    async def authenticate(self, handler, data):
        username = self.normalize_username((data or {}).get("username", ""))
        password = (data or {}).get("password", "")
        if not username or not password:
            return None
        accounts = AccountFile(self.accounts_file)
        ok = await asyncio.get_running_loop().run_in_executor(None, accounts.check, username, password)
        if not ok:
            self.log.warning("failed login for %r", username)
            return None
        return username


# -- demo accounts ----------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class DemoAccount:
    role: str
    username: str
    password: str


def read_demo_accounts(home: str | Path) -> list[DemoAccount]:
    """The demo accounts written on the first start (empty when there are none)."""
    path = Path(home) / DEMO_ACCOUNTS_FILE
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []
    accounts = []
    for line in lines:
        if not line.strip() or line.startswith("#"):
            continue
        role, username, password = line.split(None, 2)
        accounts.append(DemoAccount(role, username, password))
    return accounts


def _write_demo_accounts(home: Path, accounts: Sequence[DemoAccount]) -> None:
    width = max(len(a.username) for a in accounts)
    lines = [
        "# Demo accounts of the embedded default: role, username, password.",
        f"# Written {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC. New password:",
        "#   python -m hub_extension.embedded set-password USERNAME",
    ]
    lines += [f"{a.role:<12} {a.username:<{width}}  {a.password}" for a in accounts]
    _write_private(home / DEMO_ACCOUNTS_FILE, "\n".join(lines) + "\n")


def ensure_demo_accounts(home: str | Path) -> list[DemoAccount]:
    """Create the demo accounts with random passwords on the first start; return them.

    Once created they are never reset: an admin may delete demo-accounts.txt
    (the passwords in clear) and the accounts keep working as they were.
    """
    home = Path(home)
    accounts_file = AccountFile(home / ACCOUNTS_FILE)
    known = set(accounts_file.usernames())
    if any(username in known for _role, username in DEMO_ROLES):
        return read_demo_accounts(home)
    created = []
    for role, username in DEMO_ROLES:
        password = secrets.token_urlsafe(12)
        accounts_file.set_password(username, password)
        created.append(DemoAccount(role, username, password))
    _write_demo_accounts(home, created)
    return created


def format_demo_accounts(accounts: Sequence[DemoAccount], url: str = "") -> str:
    if not accounts:
        return (f"no {DEMO_ACCOUNTS_FILE} to show; `python -m hub_extension.embedded set-password NAME` "
                "sets a password")
    width = max(len(a.username) for a in accounts)
    head = f"Jupyter Compete at {url}" if url else "Jupyter Compete"
    lines = [head, "demo accounts (role, username, password):"]
    lines += [f"  {a.role:<12} {a.username:<{width}}  {a.password}" for a in accounts]
    return "\n".join(lines)


# -- the platform side of the first start -------------------------------------------------
def ensure_demo_competition(home: str | Path, config: Optional[Compete] = None) -> str:
    """Load the demo competition unless a competition of that title exists; return its slug.

    `config`: the platform's settings (default: the configuration file of `home`).
    """
    # Start-up cost: the hub imports this module for its authenticator; the platform (the
    # database layer, the bundle readers) loads only at the first start.
    from .app import Actor, Platform
    from .demo import DEMO_BUNDLE, DEMO_SLUG_TITLE  # (the same start-up cost)

    platform = Platform(config if config is not None else load_config(home=home).compete)
    try:
        for comp in platform.list_competitions():
            if comp["title"] == DEMO_SLUG_TITLE:
                return comp["slug"]
        organizer = Actor(DEMO_ORGANIZER, groups=frozenset({"organizers"}))
        slug, _warnings = platform.create_competition(DEMO_BUNDLE, organizer)
        return slug
    finally:
        platform.close()


def first_start(home: str | Path, config: Optional[Compete] = None) -> list[DemoAccount]:
    """Demo accounts and the demo competition, created once; returns the demo accounts."""
    home = Path(home)
    home.mkdir(parents=True, exist_ok=True)
    accounts = ensure_demo_accounts(home)
    ensure_demo_competition(home, config)
    return accounts


# -- the judge's environment in users' servers -------------------------------------------
# The hub's setting that says whether users' servers may use this machine's Docker engine
# for the judge's kernels: "0" for no; anything else (or nothing) for yes, whenever an
# engine answers.
LAB_DOCKER_SETTING = "COMPETE_LAB_DOCKER"


def judge_kernels_path(home: str | Path) -> str:
    """The JUPYTER_PATH entry that offers users' servers the judge kernels of `home`."""
    return str(servers_folder(home))


def install_judge_kernels(home: str | Path, config: Compete, environ: Optional[dict] = None) -> dict:
    """Judge kernels for users' servers: the default and legacy runtimes, as far as they are on this machine.

    Returns the state written next to them (what the competition pages say).
    Fast when they are already installed (a ping and one image lookup each).
    """
    # Start-up cost: the kernel commands (and jupyter_client behind them) load only when kernels are set up.
    from .cli_kernel import install_for_servers

    env = os.environ if environ is None else environ
    setting = env.get(LAB_DOCKER_SETTING, "").strip()
    return install_for_servers(
        home, [config.default_image, config.legacy_image], docker=False if setting == "0" else None,
        docker_setting=f"{LAB_DOCKER_SETTING}={setting}",
        memory_mb=config.step_memory_mb, cpus=config.step_cpus, pids=config.step_pids,
    )


def describe_judge_kernels(state: dict) -> str:
    """One line for the hub's log: which judge kernels the servers get, or why none."""
    if not state.get("docker"):
        return f"judge kernels: none for users' servers ({state.get('reason')}); notebooks run in this environment"
    names = [f"{entry['display_name']}" for entry in state.get("kernels", {}).values()]
    missing = [f"{why}" for why in state.get("missing", {}).values()]
    return "judge kernels for users' servers: " + ("; ".join(names) or "none") + (
        f" (not installed: {'; '.join(missing)})" if missing else "")


# -- processes a dead hub left behind ------------------------------------------------------
def leftover_processes(home: str | Path) -> list:
    """Processes of the hub of `home` (its proxy, the service, the service's Dask workers).

    The hub starts them in sessions of their own; when it dies without
    cleaning up (killed, or a failed start), they keep its ports.  They are
    recognized by the COMPETE_HOME the hub passed down to them.
    """
    home = str(Path(home).resolve())
    me = psutil.Process()
    ours = {me.pid} | {p.pid for p in me.parents()}
    found = []
    for proc in psutil.process_iter(["pid"]):
        if proc.pid in ours:
            continue
        try:
            env = proc.environ()
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
        # The hub gives its managed services JUPYTERHUB_SERVICE_NAME, its proxy
        # CONFIGPROXY_AUTH_TOKEN; the hub process itself and shells have neither.
        started_by_hub = "JUPYTERHUB_SERVICE_NAME" in env or "CONFIGPROXY_AUTH_TOKEN" in env
        if started_by_hub and env.get("COMPETE_HOME") == home:
            found.append(proc)
    return found


def stop_processes(procs: list, timeout: float = 10.0) -> None:
    """SIGTERM, then SIGKILL for those still running after `timeout` seconds."""
    for proc in procs:
        try:
            proc.terminate()
        except psutil.NoSuchProcess:
            pass
    _gone, alive = psutil.wait_procs(procs, timeout=timeout)
    for proc in alive:
        try:
            proc.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(alive, timeout=timeout)


# -- command line ----------------------------------------------------------------------------
def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m hub_extension.embedded",
        description="Accounts of the embedded default hub (kept in $COMPETE_HOME/hub-accounts.json).",
    )
    parser.add_argument("--home", default=None, help="the platform's home (default: $COMPETE_HOME, else ./compete-home)")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("set-password", help="add an account or give it a new password")
    p.add_argument("username")
    p.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    p = sub.add_parser("show", help="print the demo accounts")
    p.add_argument("--url", default="", help="the hub's address, printed first")
    sub.add_parser("list", help="list the accounts (usernames only)")
    sub.add_parser("stop-leftovers", help="stop the proxy and service processes a dead hub of this home left")
    args = parser.parse_args(argv)
    home = Path(args.home) if args.home else embedded_home()

    if args.command == "show":
        print(format_demo_accounts(read_demo_accounts(home), args.url))
        return 0
    if args.command == "stop-leftovers":
        procs = leftover_processes(home)
        for proc in procs:
            print(f"stopping leftover process {proc.pid}: {' '.join(proc.cmdline())[:120]}", file=sys.stderr)
        stop_processes(procs)
        return 0
    if args.command == "list":
        print("\n".join(AccountFile(home / ACCOUNTS_FILE).usernames()))
        return 0
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass(f"new password for {args.username}: ")
    try:
        AccountFile(home / ACCOUNTS_FILE).set_password(args.username, password)
    except AccountError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    demo = read_demo_accounts(home)
    if any(a.username == args.username for a in demo):
        # Keep the printed demo list true: it shows the password that works.
        _write_demo_accounts(
            home, [dataclasses.replace(a, password=password) if a.username == args.username else a for a in demo]
        )
    print(f"{args.username}: password set")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
