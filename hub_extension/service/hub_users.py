"""Whether user names are users of the hub, asked of the hub's REST API with the service's own token.

Co-organizers are named by user name (a bundle's `admin_names`, the
participants page); a name the hub does not know gives nobody any right, so
the organizer is told when they name it.  The service's role holds
`read:users:name` (jupyterhub_config.py).  Without a hub to ask (the service
run alone, the CLI), nothing is checked: the upload's warning already says
that the names are not checked there.
"""
from __future__ import annotations

import os
from typing import Iterable, Optional
from urllib.parse import quote, urljoin

# Seconds to wait for the hub about one name.
HUB_TIMEOUT = 10.0


def unknown_hub_users(names: Iterable[str], environ: Optional[dict[str, str]] = None) -> Optional[list[str]]:
    """The names the hub knows no user of (in order); None when the hub cannot be asked or answers oddly."""
    names = list(names)
    env = os.environ if environ is None else environ
    api_url, token = env.get("JUPYTERHUB_API_URL", ""), env.get("JUPYTERHUB_API_TOKEN", "")
    if not names:
        return []
    if not (api_url and token):
        return None
    # requests loads only when names are checked: handlers import this module at the service's start.
    import requests

    unknown = []
    with requests.Session() as session:
        session.headers["Authorization"] = f"token {token}"
        for name in names:
            try:
                resp = session.get(urljoin(api_url.rstrip("/") + "/", f"users/{quote(name, safe='')}"),
                                   timeout=HUB_TIMEOUT)
            except requests.RequestException:
                return None
            if resp.status_code == 404:
                unknown.append(name)
            elif resp.status_code != 200:
                return None
    return unknown


def unknown_user_notes(names: Iterable[str], environ: Optional[dict[str, str]] = None) -> list[str]:
    """One sentence per co-organizer the hub knows no user of."""
    return [f"admin_names: {name!r} is not a user of this hub: nobody organizes as {name!r} until an account of "
            "exactly that name exists" for name in unknown_hub_users(names, environ) or []]
