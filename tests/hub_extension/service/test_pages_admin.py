"""Queue pages (create, attach command, credentials) and the admin page (competitions, queues, storage)."""
from __future__ import annotations

import json
import re


from tests.support import builders
from tests.support.service_harness import PREFIX, ok


def test_an_organizer_creates_a_queue_and_gets_the_attach_command_and_credentials(world_server):
    server, world = world_server
    olga = server.browser("olga")
    page = ok(olga.get("queues")).text
    assert 'id="no-queues"' in page and 'id="create-queue-form"' in page
    assert f'<option value="{world.slug}"' in page and f'<option value="{world.other_slug}"' not in page

    created = olga.post("queues", {"name": "olga-gpus", "competition": world.slug})
    assert created.status_code == 302, created.text[:2000]
    assert created.headers["Location"] == f"{PREFIX}queues/olga-gpus"
    page = ok(olga.follow(created)).text
    assert "Queue &#39;olga-gpus&#39; created" in page
    assert re.search(r'<pre id="attach-command">compete worker --credentials olga-gpus-credentials\.json', page)
    assert f'href="{PREFIX}queues/olga-gpus/credentials"' in page
    assert 'id="no-workers"' in page and f"competitions/{world.slug}" in page

    credentials = ok(olga.get("queues/olga-gpus/credentials"))
    assert 'filename="olga-gpus-credentials.json"' in credentials.headers["Content-Disposition"]
    data = json.loads(credentials.content)
    # Replacing the credentials (a leaked file): a new CA, so the file given out before no longer attaches.
    assert 'id="rotate-form"' in page
    rotated = olga.post("queues/olga-gpus/rotate", {})
    assert rotated.status_code == 302 and rotated.headers["Location"] == f"{PREFIX}queues/olga-gpus"
    assert "new credentials" in ok(olga.follow(rotated)).text
    fresh = json.loads(ok(olga.get("queues/olga-gpus/credentials")).content)
    assert fresh["ca"] != data["ca"] and fresh["scheduler"] == data["scheduler"]
    assert server.browser("ann").post("queues/olga-gpus/rotate", {}).status_code == 403
    assert data["queue"] == "olga-gpus" and data["scheduler"].startswith("tls://")
    assert "BEGIN CERTIFICATE" in data["cert"] and "PRIVATE KEY" in data["key"]

    listing = ok(olga.get("queues")).text
    row = re.search(r'<tr data-queue="olga-gpus">.*?</tr>', listing, re.S).group(0)
    assert world.slug in row and "tls://" in row

    # The queue is the organizers' own: others see neither it nor its credentials.
    for user in ("ann", "oscar"):
        browser = server.browser(user)
        assert browser.get("queues/olga-gpus").status_code == 403, user
        assert browser.get("queues/olga-gpus/credentials").status_code == 403, user
        assert 'data-queue="olga-gpus"' not in ok(browser.get("queues")).text


def test_a_refused_queue_shows_the_form_again_with_the_reason(world_server):
    server, world = world_server
    olga = server.browser("olga")
    bad = olga.post("queues", {"name": "Bad Name!", "competition": world.slug})
    assert bad.status_code == 400 and 'id="queue-error"' in bad.text and "invalid queue name" in bad.text
    assert 'value="Bad Name!"' in bad.text
    other = olga.post("queues", {"name": "mine", "competition": world.other_slug})
    assert other.status_code == 403
    assert server.browser("ann").post("queues", {"name": "annq"}).status_code == 403
    assert 'id="create-queue-form"' not in ok(server.browser("ann").get("queues")).text
    assert olga.post("queues", {"name": "no-token"}, xsrf=False).status_code == 403
    assert 'data-queue="no-token"' not in ok(olga.get("queues")).text


def test_the_admin_page_lists_competitions_queues_and_storage(world_server):
    server, world = world_server
    assert server.browser("olga").post("queues", {"name": "olga-q", "competition": world.slug}).status_code == 302
    root = server.browser("root")
    page = ok(root.get("admin")).text
    competitions = re.search(r'<table id="admin-competitions">.*?</table>', page, re.S).group(0)
    assert f'data-slug="{world.slug}"' in competitions and f'data-slug="{world.other_slug}"' in competitions
    queues = re.search(r'<table id="queues">.*?</table>', page, re.S).group(0)
    assert 'data-queue="default"' in queues and 'data-queue="olga-q"' in queues
    storage = re.search(r'<div id="storage">.*?</table>', page, re.S).group(0)
    use = server.platform.storage_use(builders.ADMIN)
    assert use["total_bytes"] > 0
    assert str(server.platform.store.root) in storage
    secrets_row = re.search(rf'<tr data-slug="{world.slug}">.*?</tr>', storage, re.S).group(0)
    assert ">3<" in secrets_row  # three submissions
    mine = next(c for c in use["competitions"] if c["slug"] == world.slug)
    # The files they sent, and their runs' logs and outputs, at their stored sizes.
    assert re.findall(r'data-bytes="(\d+)"', secrets_row) == [str(mine["submission_bytes"]), str(mine["output_bytes"])]
    assert mine["submission_bytes"] > 0
    assert f'href="{PREFIX}admin"' in page  # the nav links admins to it
    for user in ("olga", "ann"):
        refused = server.browser(user).get("admin")
        assert refused.status_code == 403 and "only hub admins" in refused.text
        assert f'href="{PREFIX}admin"' not in ok(server.browser(user).get("")).text


def test_the_queue_page_shows_attached_workers_and_what_waits(world_server):
    server, world = world_server
    assert server.browser("olga").post("queues", {"name": "gpu-box", "competition": world.slug}).status_code == 302
    server.platform.record_queue_state("gpu-box", connected=True, workers=[
        {"name": "lab-gpu-1", "address": "tls://10.0.0.5:4000", "nthreads": 2, "resources": {"GPU": 1.0},
         "running": ["compete-7-1"], "last_seen": 1.5, "status": "running"},
        {"name": "lab-cpu", "address": "tls://10.0.0.6:4000", "nthreads": 4, "resources": {},
         "running": [], "last_seen": 120.0, "status": "running"},
    ])
    page = ok(server.browser("olga").get("queues/gpu-box")).text
    rows = dict(re.findall(r'<tr data-worker="([\w-]+)">(.*?)</tr>', page, re.S))
    assert set(rows) == {"lab-gpu-1", "lab-cpu"}
    assert "GPU=1" in rows["lab-gpu-1"] and "1 task" in rows["lab-gpu-1"] and "silent" not in rows["lab-gpu-1"]
    assert "silent" in rows["lab-cpu"] and "120 s ago" in rows["lab-cpu"]
    listing = ok(server.browser("olga").get("queues")).text
    row = re.search(r'<tr data-queue="gpu-box">.*?</tr>', listing, re.S).group(0)
    assert re.findall(r'<td class="num">(\d+)</td>', row)[:2] == ["2", "1"]  # workers, GPUs
    # The platform's own queue is the admins'.
    default = ok(server.browser("root").get("queues/default")).text
    assert "Queue default" in default and 'id="attach-command"' not in default
    assert server.browser("olga").get("queues/default").status_code == 403
