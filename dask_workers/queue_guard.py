"""Who is on the other end of a queue's TLS connection, and reading what untrusted peers send as plain data.

Every certificate of a queue is signed by the queue's own CA; its role
(`scheduler`, `client` or `worker`) is the organizational unit of its subject
(`role_of_peercert`), written there by the platform when it issues it
(`hub_extension.tls`).  Both ends of a queue use it: `compete worker` serves
its queue's scheduler only (`dask_workers.attach`), and a queue's scheduler
gives worker certificates only the operations of a worker
(`hub_extension.queue_scheduler`).

Dask unpickles parts of a message as it reads it, the connection handshake
included, so refusing an operation afterwards would come too late:
`plain_reads_when` decodes what a connection reads as plain msgpack whenever
a rule says the peer is untrusted, and replaces pickled or serialized parts
by `REFUSED`.

Worker side: the standard library and distributed (imported when the guard
is installed).
"""
from __future__ import annotations

import contextvars
from typing import Any, Callable

ROLES = ("scheduler", "client", "worker")
REFUSED = "<refused: serialized data from a worker>"

_untrusted = contextvars.ContextVar("compete_untrusted_peer", default=False)
_installed = False
_plain_rules: list = []  # see plain_reads_when


def role_of_peercert(peercert: object) -> str | None:
    """The role in a peer certificate as returned by `ssl.SSLSocket.getpeercert()`."""
    if not isinstance(peercert, dict):
        return None
    units = [
        value
        for rdn in peercert.get("subject", ())
        for key, value in rdn
        if key == "organizationalUnitName"
    ]
    return units[0] if len(units) == 1 and units[0] in ROLES else None


def peer_role(comm: Any) -> str | None:
    """The role in the certificate of the peer of `comm` (None without one)."""
    try:
        return role_of_peercert(comm.extra_info.get("peercert"))
    except Exception:  # noqa: BLE001 - no certificate, no role
        return None


def plain_loads(frames: list) -> Any:
    """Decode a message without ever unpickling: serialized parts are refused."""
    # distributed and its msgpack are loaded by the processes that read untrusted peers
    # only (start-up cost: tls.py reads roles from here without them).
    import msgpack
    from distributed.protocol.core import msgpack_opts  # start-up cost, as above

    def hook(obj: dict) -> Any:
        if "__Pickled__" in obj or "__Serialized__" in obj:
            return REFUSED
        if "__Enum__" in obj:
            return REFUSED
        if "__Set__" in obj:
            return set(obj.get("as-list", ()))
        return obj

    if not frames:
        return {}
    return msgpack.loads(frames[0], object_hook=hook, use_list=False, **msgpack_opts)


def plain_reads_when(is_untrusted: Callable[[Any], bool]) -> None:
    """Decode what a TLS connection reads as plain data whenever `is_untrusted(comm)` says so.

    Dask unpickles parts of a message as it reads it, the connection
    handshake included, so the decision is taken on reading, before any
    handler sees the message.  Distributed's TLS reads are patched once per
    process; each caller adds its own rule (once: adding a rule again changes
    nothing), and a read is plain when any rule holds (a process can be a
    queue scheduler and hold other clients, or a worker in tests beside a
    scheduler).
    """
    global _installed
    if is_untrusted not in _plain_rules:
        _plain_rules.append(is_untrusted)
    if _installed:
        return
    # Loaded when the guard is installed (start-up cost, as in plain_loads).
    import distributed.comm.tcp as tcp

    original_from_frames = tcp.from_frames
    original_read = tcp.TLS.read

    async def guarded_from_frames(frames, deserialize=True, deserializers=None, allow_offload=True):
        if _untrusted.get():
            return plain_loads(frames)
        return await original_from_frames(
            frames, deserialize=deserialize, deserializers=deserializers, allow_offload=allow_offload
        )

    async def guarded_read(self, deserializers=None):
        if not any(rule(self) for rule in _plain_rules):
            return await original_read(self, deserializers)
        token = _untrusted.set(True)
        try:
            return await original_read(self, deserializers)
        finally:
            _untrusted.reset(token)

    tcp.from_frames = guarded_from_frames
    tcp.TLS.read = guarded_read
    _installed = True


__all__ = ["REFUSED", "ROLES", "peer_role", "plain_loads", "plain_reads_when", "role_of_peercert"]
