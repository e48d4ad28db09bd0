"""An S3-compatible object store for tests: moto's standalone server, one per session.

`s3_server` starts `moto.server.ThreadedMotoServer` on a free port of
127.0.0.1 and gives its endpoint; `s3_options` are the `storage_options` of
a store that talks to it (s3fs's keyword arguments), and `s3_url` a fresh
`s3://<bucket>/<prefix>` in a bucket made for each test, so that tests never
see each other's objects.
"""
from __future__ import annotations

import socket
import uuid
from typing import Any

import pytest


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def s3_server() -> str:
    """The endpoint URL of a running S3-compatible server."""
    # Imported here: moto (and flask) load only for the sessions that use an object store.
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def s3_options(s3_server) -> dict[str, Any]:
    return {"key": "testing", "secret": "testing", "endpoint_url": s3_server,
            "client_kwargs": {"region_name": "us-east-1"}}


@pytest.fixture
def s3_url(s3_options) -> str:
    """A new bucket's `s3://<bucket>/artifacts`."""
    # Imported here: boto3 comes with moto, a test-only dependency.
    import boto3

    bucket = f"compete-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=s3_options["endpoint_url"], aws_access_key_id=s3_options["key"],
                 aws_secret_access_key=s3_options["secret"], region_name="us-east-1").create_bucket(Bucket=bucket)
    return f"s3://{bucket}/artifacts"
