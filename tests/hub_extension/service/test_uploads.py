"""Uploads stream to disk: the multipart parser, and the API's uploads over real HTTP.

The parser is fed bodies cut at every byte (boundaries split across chunks);
the API gets large bodies while the test measures what the service allocates
(tracemalloc: the old handler read the whole body into memory to parse it),
malformed and non-UTF-8 bodies (JSON errors), and files over the cap.
The file of an upload is written by a thread (`OffLoopFile`): its bytes keep
their order, at most two batches are held, a failed write is reported, and
the event loop's thread never writes.
"""
from __future__ import annotations

import asyncio
import io
import os
import threading
from concurrent.futures import ThreadPoolExecutor
import tracemalloc
import uuid
import zipfile
from pathlib import Path

import pytest

from hub_extension.service.uploads import MultipartStream, OffLoopFile, UploadRefused, multipart_boundary

from tests.support.builders import ANN, build_world, zip_bytes
from tests.support.service_harness import ServiceServer


def multipart(fields: dict[str, str], file_name: bytes | str, data: bytes, boundary: str = "b0undary",
              file_field: str = "file") -> bytes:
    name = file_name.encode() if isinstance(file_name, str) else file_name
    out = io.BytesIO()
    for key, value in fields.items():
        out.write(f"--{boundary}\r\nContent-Disposition: form-data; name=\"{key}\"\r\n\r\n{value}\r\n".encode())
    out.write(f"--{boundary}\r\nContent-Disposition: form-data; name=\"{file_field}\"; filename=\"".encode()
              + name + b"\"\r\nContent-Type: application/zip\r\n\r\n" + data + b"\r\n")
    out.write(f"--{boundary}--\r\n".encode())
    return out.getvalue()


class Collect:
    def __init__(self):
        self.files: dict[str, io.BytesIO] = {}

    def open(self, name: str):
        buf = self.files[name] = io.BytesIO()
        buf.close = lambda: None  # keep the bytes readable after the parser closes it
        return buf


# -- the parser ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("step", [1, 2, 3, 7, 13, 64, 4096])
def test_the_parser_finds_boundaries_split_across_chunks(step):
    # The file holds near-boundaries: CRLF and dashes that are not the delimiter.
    data = b"PK\x03\x04" + b"\r\n--b0undar" + os.urandom(3000) + b"\r\n-" + b"--b0undary" + b"\r\n--b0undarX"
    body = multipart({"phase": "2", "description": "héllo"}, "my file.zip", data)
    sink = Collect()
    parser = MultipartStream(multipart_boundary("multipart/form-data; boundary=b0undary"), sink.open,
                             max_file_bytes=1 << 20)
    for at in range(0, len(body), step):
        parser.feed(body[at:at + step])
    parser.finish()
    assert parser.filename == "my file.zip"
    assert sink.files["my file.zip"].getvalue() == data
    assert parser.fields == {"phase": "2", "description": "héllo"}


def test_the_parser_caps_the_file_and_the_fields():
    sink = Collect()
    parser = MultipartStream(b"b0undary", sink.open, max_file_bytes=1000)
    with pytest.raises(UploadRefused) as caught:
        parser.feed(multipart({}, "a.zip", b"x" * 5000))
    assert caught.value.status == 413
    parser = MultipartStream(b"b0undary", sink.open, max_file_bytes=1000)
    with pytest.raises(UploadRefused) as caught:
        parser.feed(multipart({"description": "y" * 70_000}, "a.zip", b"x"))
    assert caught.value.status == 400 and "description" in str(caught.value)


def test_the_parser_refuses_incomplete_and_non_utf8_bodies():
    parser = MultipartStream(b"b0undary", Collect().open, max_file_bytes=1000)
    parser.feed(multipart({}, "a.zip", b"abc")[:-20])
    with pytest.raises(UploadRefused, match="closing boundary"):
        parser.finish()
    parser = MultipartStream(b"b0undary", Collect().open, max_file_bytes=1000)
    with pytest.raises(UploadRefused, match="UTF-8"):
        parser.feed(multipart({}, b"\xff\xfe\xfd.zip", b"abc"))


# -- the off-loop file ---------------------------------------------------------------------------------
class RecordingExecutor(ThreadPoolExecutor):
    """One worker; remembers which threads ran the work and how many bytes each write held."""

    def __init__(self):
        super().__init__(max_workers=1)
        self.threads: set[int] = set()

    def submit(self, fn, *args, **kwargs):
        def run():
            self.threads.add(threading.get_ident())
            return fn(*args, **kwargs)
        return super().submit(run)


def test_the_off_loop_file_writes_in_order_from_its_thread_with_two_batches_at_most(tmp_path):
    executor = RecordingExecutor()
    target = tmp_path / "upload.bin"
    data = os.urandom(5 * 4096 + 123)
    held: list[int] = []

    async def scenario():
        out = OffLoopFile(target, executor, batch_bytes=4096)
        for at in range(0, len(data), 1000):
            out.write(data[at:at + 1000])
            await out.flush()
            # Gathering plus the batch on its way: never more than two batches and a chunk.
            in_flight = 0 if out._writing is None else 4096 + 1000
            held.append(len(out._pending) + in_flight)
        assert not out.complete
        out.close()
        with pytest.raises(ValueError):
            out.write(b"late")
        await out.flush()
        assert out.complete and out.bytes_written == len(data)
        return threading.get_ident()

    loop_thread = asyncio.run(scenario())
    executor.shutdown(wait=True)
    assert target.read_bytes() == data
    assert max(held) <= 2 * 4096 + 1000
    assert executor.threads and loop_thread not in executor.threads


def test_the_off_loop_file_can_be_finished_from_a_sync_caller_and_discarded(tmp_path):
    executor = ThreadPoolExecutor(max_workers=1)

    async def scenario():
        done = OffLoopFile(tmp_path / "a.bin", executor, batch_bytes=10)
        for piece in (b"0123456789", b"abcdefghij", b"xyz"):
            done.write(piece)
            await done.flush()
        done.finish_blocking()  # a raw body sent chunked: its end shows in the sync handler
        assert done.complete
        dropped = OffLoopFile(tmp_path / "b.bin", executor, batch_bytes=10)
        dropped.write(b"0123456789" * 3)
        await dropped.flush()
        dropped.write(b"never written")
        dropped.discard()
        await dropped.flush()  # nothing left to do
        assert not dropped.complete

    asyncio.run(scenario())
    executor.shutdown(wait=True)
    assert (tmp_path / "a.bin").read_bytes() == b"0123456789abcdefghijxyz"
    assert b"never written" not in (tmp_path / "b.bin").read_bytes()


def test_a_failed_write_is_raised_by_the_next_flush(tmp_path):
    executor = ThreadPoolExecutor(max_workers=1)

    class Full(io.RawIOBase):
        def writable(self):
            return True

        def write(self, data):
            raise OSError(28, "No space left on device")

    async def scenario():
        out = OffLoopFile(tmp_path / "c.bin", executor, batch_bytes=4)
        out._fh.close()
        out._fh = Full()
        out.write(b"12345")
        await out.flush()  # handed over; the failure shows at the next flush
        out.write(b"67890")
        with pytest.raises(OSError, match="No space"):
            await out.flush()

    asyncio.run(scenario())
    executor.shutdown(wait=True)


# -- the API -----------------------------------------------------------------------------------------
@pytest.fixture
def world_api(platform, tmp_path):
    world = build_world(platform, tmp_path)
    server = ServiceServer(platform).start()
    yield server, world
    server.stop()


def json_error(resp) -> dict:
    assert resp.headers["Content-Type"].startswith("application/json"), (resp.status_code, resp.text[:300])
    return resp.json()["error"]


def test_a_non_utf8_file_name_gets_the_json_error_shape(world_api):
    server, world = world_api
    url = f"api/v1/competitions/{world.slug}/submissions"
    body = multipart({}, b"pr\xe9dictions-\xff.zip", zip_bytes({"predictions.txt": "1\n"}))
    resp = server.client("ann").post(url, data=body, headers={"Content-Type": "multipart/form-data; boundary=b0undary"})
    assert resp.status_code == 400 and "UTF-8" in json_error(resp)["message"]
    # The same name in the query string of a raw upload.
    resp = server.client("ann").post(url + "?filename=pr%E9dictions.zip", data=zip_bytes({"p.txt": "1\n"}),
                                     headers={"Content-Type": "application/octet-stream"})
    assert resp.status_code == 400 and json_error(resp)["code"] == "bad_request"
    # A multipart body whose Content-Type has no boundary, and one cut short.
    resp = server.client("ann").post(url, data=b"--x\r\n", headers={"Content-Type": "multipart/form-data"})
    assert resp.status_code == 400 and "boundary" in json_error(resp)["message"]
    resp = server.client("ann").post(url, data=body[:-30],
                                     headers={"Content-Type": "multipart/form-data; boundary=b0undary"})
    assert resp.status_code == 400 and json_error(resp)["code"] == "bad_request"


def test_a_multipart_submission_keeps_its_fields(world_api):
    server, world = world_api
    body = multipart({"description": "streamed in pieces"}, "predictions.zip",
                     zip_bytes({"predictions.txt": "1\n0\n1\n"}))

    def pieces():
        for at in range(0, len(body), 7):
            yield body[at:at + 7]

    # A body sent in small chunked pieces (straight to the service, no proxy in between).
    resp = server.client("ann").post(f"api/v1/competitions/{world.slug}/submissions", data=pieces(),
                                     headers={"Content-Type": "multipart/form-data; boundary=b0undary"})
    assert resp.status_code == 201, resp.text
    assert resp.json()["description"] == "streamed in pieces" and resp.json()["filename"] == "predictions.zip"


def test_a_file_over_the_cap_gets_413_in_json(world_api):
    server, world = world_api
    server.platform.config.max_upload_bytes = 200_000
    body = multipart({}, "big.zip", b"x" * 150_000 + b"y" * 100_000)

    def pieces():  # chunked: no Content-Length to refuse it by
        for at in range(0, len(body), 32_768):
            yield body[at:at + 32_768]

    resp = server.client("ann").post(f"api/v1/competitions/{world.slug}/submissions", data=pieces(),
                                     headers={"Content-Type": "multipart/form-data; boundary=b0undary"})
    assert resp.status_code == 413 and json_error(resp)["code"] == "too_large"


def test_a_large_multipart_upload_is_never_held_in_memory(world_api, tmp_path):
    """64 MB through the API: the service allocates a few chunks' worth, not the body (the old
    handler read the spooled body back and parsed it in memory: twice the file at least)."""
    server, world = world_api
    size = 64 * 1024 * 1024
    # A stored zip (no compression) whose one member is the big file: valid for `submit`.
    payload = tmp_path / "payload.zip"
    with zipfile.ZipFile(payload, "w", zipfile.ZIP_STORED) as zf:
        with zf.open("predictions.txt", "w", force_zip64=True) as member:
            block = os.urandom(1 << 20)
            for _ in range(size >> 20):
                member.write(block)
    boundary = uuid.uuid4().hex
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"description\"\r\n\r\nbig\r\n"
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.zip\"\r\n"
            "Content-Type: application/zip\r\n\r\n").encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    body_path = tmp_path / "body"
    with open(body_path, "wb") as out, open(payload, "rb") as src:
        out.write(head)
        while block := src.read(1 << 20):
            out.write(block)
        out.write(tail)
    tracemalloc.start()
    try:
        with open(body_path, "rb") as fh:
            resp = server.client("ann").post(
                f"api/v1/competitions/{world.slug}/submissions", data=fh,
                headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert resp.status_code == 201, resp.text
    assert resp.json()["description"] == "big"
    assert peak < 16 * 1024 * 1024, f"the service allocated {peak / 2**20:.0f} MB for a {size >> 20} MB upload"
    stored = Path(server.platform.submission_file(resp.json()["id"], ANN)[0])
    assert stored.stat().st_size == payload.stat().st_size


def test_raw_uploads_with_and_without_a_length_are_stored_whole(world_api):
    server, world = world_api
    payload = zip_bytes({"predictions.txt": "1\n0\n" * 400_000, "pad.bin": os.urandom(3 << 20)})
    url = f"api/v1/competitions/{world.slug}/submissions?filename=raw.zip"

    def pieces():  # chunked: the end of the body shows only once it is all in
        for at in range(0, len(payload), 100_000):
            yield payload[at:at + 100_000]

    for body in (payload, pieces()):
        resp = server.client("ann").post(url, data=body, headers={"Content-Type": "application/zip"})
        assert resp.status_code == 201, resp.text
        stored = Path(server.platform.submission_file(resp.json()["id"], ANN)[0])
        assert stored.read_bytes() == payload


# -- submission zips get the unpack caps of bundles -----------------------------------------------------
def zip_bomb(path: Path, name: str = "predictions.txt", gib: int = 5) -> Path:
    """A real zip (readable by any unzip) whose one member inflates to `gib` GiB of zeros.

    Its deflate stream repeats one fully flushed block of 1 MiB of zeros, so it
    is built in seconds and is about 1 KB per MiB on disk.
    """
    import struct
    import zlib

    mib = 1 << 20
    co = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = co.compress(bytes(mib)) + co.flush(zlib.Z_FULL_FLUSH)
    final = zlib.compressobj(9, zlib.DEFLATED, -15).flush(zlib.Z_FINISH)
    count = gib * 1024
    size = count * mib
    zeros, crc = bytes(64 * mib), 0
    for _ in range(size // len(zeros)):
        crc = zlib.crc32(zeros, crc)
    compressed = len(block) * count + len(final)
    fname = name.encode()
    extra = struct.pack("<HHQQ", 1, 16, size, compressed)  # zip64: the real sizes
    local = struct.pack("<IHHHHHIIIHH", 0x04034B50, 45, 0, 8, 0, 0x21, crc, 0xFFFFFFFF, 0xFFFFFFFF,
                        len(fname), len(extra)) + fname + extra
    central = struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 45, 45, 0, 8, 0, 0x21, crc, 0xFFFFFFFF,
                          0xFFFFFFFF, len(fname), len(extra), 0, 0, 0, 0, 0) + fname + extra
    with open(path, "wb") as out:
        out.write(local)
        for _ in range(count):
            out.write(block)
        out.write(final)
        cd_offset = out.tell()
        out.write(central)
        out.write(struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 1, 1, len(central), cd_offset, 0))
    return path


def stored_files(platform) -> set[str]:
    root = Path(platform.config.home)
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and "compete.sqlite" not in p.name}


def test_a_zip_bomb_submission_is_refused_before_anything_is_stored(world_api, tmp_path):
    server, world = world_api
    bomb = zip_bomb(tmp_path / "predictions.zip")
    assert bomb.stat().st_size < 6 * 1024 * 1024
    with zipfile.ZipFile(bomb) as zf:
        assert zf.infolist()[0].file_size == 5 * 1024**3
    before_files = stored_files(server.platform)
    before = server.client("ann").get(f"api/v1/competitions/{world.slug}/submissions").json()["total"]
    with open(bomb, "rb") as fh:
        resp = server.client("ann").post(f"api/v1/competitions/{world.slug}/submissions",
                                         files={"file": ("predictions.zip", fh)})
    assert resp.status_code == 400, resp.text
    message = json_error(resp)["message"]
    assert "predictions.txt" in message and "Nothing was stored" in message, message
    assert "compression ratio" in message and "rebuild the zip" in message, message
    assert server.client("ann").get(f"api/v1/competitions/{world.slug}/submissions").json()["total"] == before
    assert stored_files(server.platform) == before_files
    # The message names no folder of the service's machine.
    assert str(tmp_path) not in message and "/tmp" not in message


def test_a_submission_zip_over_the_member_cap_is_refused(world_api):
    server, world = world_api
    server.platform.config.unpack_max_members = 50
    data = zip_bytes({f"p{i}.txt": "1\n" for i in range(60)})
    resp = server.client("ann").post(f"api/v1/competitions/{world.slug}/submissions",
                                     files={"file": ("predictions.zip", data)})
    assert resp.status_code == 400 and "60 members" in json_error(resp)["message"]
    data = zip_bytes({f"p{i}.txt": "1\n" for i in range(10)})
    resp = server.client("ann").post(f"api/v1/competitions/{world.slug}/submissions",
                                     files={"file": ("predictions.zip", data)})
    assert resp.status_code == 201, resp.text


# -- smaller ones: bounded numbers, the health check ----------------------------------------------------
def test_offsets_and_ids_past_a_database_integer_get_a_json_400_or_404(world_api):
    server, world = world_api
    ann = server.client("ann")
    for query in ("offset=9223372036854775808", "offset=99999999999999999999999", "limit=99999999999999999999",
                  "phase=18446744073709551617"):
        resp = ann.get(f"api/v1/competitions/{world.slug}/submissions?{query}")
        assert resp.status_code == 400, (query, resp.status_code, resp.text[:200])
        assert "must be at most" in json_error(resp)["message"]
    resp = ann.get("api/v1/submissions/99999999999999999999999999")
    assert resp.status_code == 404 and json_error(resp)["code"] == "not_found"
    assert ann.get(f"api/v1/competitions/{world.slug}/submissions?offset=5").status_code == 200


def test_health_answers_503_when_the_database_is_corrupted(tmp_path):
    from hub_extension.app import Platform

    home = tmp_path / "home"
    platform = Platform(home=str(home))
    build_world(platform, tmp_path)
    platform.close()
    copy = tmp_path / "copy"
    copy.mkdir()
    (copy / "compete.sqlite").write_bytes((home / "compete.sqlite").read_bytes())
    broken = Platform(home=str(copy))
    server = ServiceServer(broken, health_max_age=0).start()
    try:
        assert server.client().get("api/v1/health").json()["status"] == "ok"
        # The file gets corrupted under the running service (a disk fault, a bad copy): here the
        # pages of its schema, which every check reads whatever the tables' layout in the file.
        with open(copy / "compete.sqlite", "r+b") as fh:
            fh.seek(100)  # past the file header, into the schema's first page
            fh.write(os.urandom(8192))
        broken.db.engine.dispose()
        resp = server.client().get("api/v1/health")
        assert resp.status_code == 503, resp.text
        assert resp.json()["status"] == "unavailable" and str(copy) not in resp.text
    finally:
        server.stop()
        broken.close()
    healthy = Platform(home=str(home))
    server = ServiceServer(healthy).start()
    try:
        assert server.client().get("api/v1/health").json()["status"] == "ok"
    finally:
        server.stop()
        healthy.close()
