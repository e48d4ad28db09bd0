"""Signed manifests: canonical form, the key file, byte-for-byte verification and `compete manifest`'s exit codes."""
from __future__ import annotations

import json
import os
import stat

import pytest

from hub_extension import manifest as signing
from hub_extension.cli import main
from tests.hub_extension.app.test_reproductions import record
from tests.support.builders import ANN


def test_the_key_is_made_once_mode_0600_and_kept(tmp_path):
    key = signing.load_key(tmp_path)
    path = tmp_path / signing.KEY_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and len(key) == 32
    assert signing.load_key(tmp_path) == key
    assert not [p for p in tmp_path.iterdir() if p.name != signing.KEY_FILE]  # no temporary file left


def test_a_key_file_that_is_no_key_says_so(tmp_path):
    (tmp_path / "short").write_text("abcd\n")
    with pytest.raises(signing.ManifestError, match="holds 2 bytes, a key has 32"):
        signing.read_key(tmp_path / "short")
    with pytest.raises(signing.ManifestError, match="no manifest key"):
        signing.read_key(tmp_path / "missing")


def test_the_canonical_form_sorts_keys_and_is_compact():
    assert signing.canonical({"b": 1, "a": [1, {"d": "é", "c": None}]}) == '{"a":[1,{"c":null,"d":"é"}],"b":1}'.encode()


def test_every_single_byte_changed_is_seen(tmp_path):
    key = signing.load_key(tmp_path)
    document = signing.sign({"submission": {"id": 7, "filename": "x.zip"}, "scores": {"accuracy": 0.875},
                             "runs": [{"provenance": {"image": {"digest": "sha256:" + "a" * 64}}}]}, key)
    data = signing.document_bytes(document)
    assert signing.verify_bytes(data, key).valid
    invalid = unusable = 0
    for position in range(len(data)):
        for flip in (0x01, 0x20):
            changed = bytearray(data)
            changed[position] ^= flip
            try:
                verdict = signing.verify_bytes(bytes(changed), key)
            except signing.ManifestError:
                unusable += 1
                continue
            assert not verdict.valid, (position, bytes(changed))
            invalid += 1
    # Most changes leave JSON that is read and then refused; the rest is no manifest at all.
    assert invalid > len(data) and unusable > 0
    assert not signing.verify_bytes(data, b"k" * 32).valid  # another key


def test_the_public_signature_sees_every_single_byte_changed_without_the_secret(tmp_path):
    key, signer = signing.load_key(tmp_path), signing.load_signing_key(tmp_path)
    assert stat.S_IMODE((tmp_path / signing.SIGNING_KEY_FILE).stat().st_mode) == 0o600
    assert signing.public_key_hex(signing.load_signing_key(tmp_path)) == signing.public_key_hex(signer)  # kept
    public = bytes.fromhex(signing.public_key_hex(signer))
    data = signing.document_bytes(signing.sign({"submission": {"id": 9}, "scores": {"f1": 0.5}}, key, signer))
    assert signing.verify_bytes(data, None, public).valid
    assert signing.verify_bytes(data, key).valid  # the platform's own check covers the public signature too
    for position in range(len(data)):
        changed = bytearray(data)
        changed[position] ^= 0x01
        for with_key, with_public in ((None, public), (key, None)):
            try:
                verdict = signing.verify_bytes(bytes(changed), with_key, with_public)
            except signing.ManifestError:
                continue
            assert not verdict.valid, (position, bytes(changed))
    # Signed by another platform: its public key is not the one given.
    stranger = signing.load_signing_key(tmp_path / "elsewhere")
    forged = signing.document_bytes(signing.sign({"submission": {"id": 9}}, key, stranger))
    assert "another key than the public key given" in signing.verify_bytes(forged, None, public).message
    # A manifest without a public signature cannot pass a public check.
    plain = signing.document_bytes(signing.sign({"submission": {"id": 9}}, key))
    assert "no public signature" in signing.verify_bytes(plain, None, public).message
    with pytest.raises(signing.ManifestError, match="nothing to check"):
        signing.verify_bytes(data, None, None)


def test_whitespace_added_to_a_signed_file_is_a_change(tmp_path):
    key = signing.load_key(tmp_path)
    document = signing.sign({"submission": {"id": 1}}, key)
    pretty = json.dumps(document, indent=2, sort_keys=True).encode()
    verdict = signing.verify_bytes(pretty, key)
    assert not verdict.valid and "canonical form" in verdict.message


def test_compete_manifest_get_and_verify(platform, world, tmp_path, capsys):
    sid = platform.submit(world.slug, tmp_path / "predictions.zip", username="ann", actor=ANN)
    record(platform, sid, {"accuracy": 0.75, "secret": 0.25, "private_score": 0.1})
    home = platform.config.home
    out = tmp_path / "manifest.json"
    assert main(["--home", home, "manifest", "get", str(sid), "-o", str(out)]) == 0
    data = out.read_bytes()
    assert json.loads(data)["manifest"]["submission"]["id"] == sid
    assert main(["--home", home, "manifest", "verify", str(out)]) == 0
    assert "valid: submission" in capsys.readouterr().out
    # The key file given by hand, from any machine.
    assert main(["manifest", "verify", str(out), "--key", os.path.join(home, signing.KEY_FILE)]) == 0

    # One byte of a score changed: invalid, exit 1.
    text = data.decode()
    assert '"accuracy":0.75' in text
    out.write_bytes(text.replace('"accuracy":0.75', '"accuracy":0.76').encode())
    assert main(["--home", home, "manifest", "verify", str(out)]) == 1
    assert "invalid: the signature does not match" in capsys.readouterr().err

    # Not a manifest, no key, another key: exit 2, 2, 1.
    out.write_bytes(b"{not json")
    assert main(["--home", home, "manifest", "verify", str(out)]) == 2
    assert "unusable: the file is not JSON" in capsys.readouterr().err
    out.write_bytes(data)
    assert main(["manifest", "verify", str(out), "--key", str(tmp_path / "nokey")]) == 2
    assert "no manifest key" in capsys.readouterr().err
    other = tmp_path / "other_key"
    other.write_text("11" * 32)
    assert main(["manifest", "verify", str(out), "--key", str(other)]) == 1
    assert main(["--home", home, "manifest", "verify", str(tmp_path / "missing.json")]) == 2
    capsys.readouterr()

    # Anyone checks it with the published public key, no secret: PEM or hex.
    pem = tmp_path / "platform.pem"
    assert main(["--home", home, "manifest", "public-key", "-o", str(pem)]) == 0
    assert pem.read_text().startswith("-----BEGIN PUBLIC KEY-----")
    assert main(["manifest", "verify", str(out), "--public-key", str(pem)]) == 0
    assert "signed with Ed25519 (the public key given)" in capsys.readouterr().out
    raw = tmp_path / "platform.hex"
    raw.write_text(json.loads(data)["public_signature"]["public_key"])
    assert main(["manifest", "verify", str(out), "--public-key", str(raw)]) == 0
    out.write_bytes(text.replace('"accuracy":0.75', '"accuracy":0.76').encode())
    assert main(["manifest", "verify", str(out), "--public-key", str(pem)]) == 1
    assert "public signature does not match" in capsys.readouterr().err
    raw.write_text("not a key")
    assert main(["manifest", "verify", str(out), "--public-key", str(raw)]) == 2


def test_compete_manifest_get_of_an_unknown_submission_fails_in_a_line(platform, world, capsys):
    assert main(["--home", platform.config.home, "manifest", "get", "999"]) == 1
    assert "no submission 999" in capsys.readouterr().err


def test_compete_submission_reproduce_and_reproduce_top(platform, world, tmp_path, capsys):
    sid = platform.submit(world.slug, tmp_path / "predictions.zip", username="ann", actor=ANN)
    record(platform, sid, {"accuracy": 0.95, "secret": 0.05, "private_score": 0.1})
    home = platform.config.home
    assert main(["--home", home, "submission", "reproduce", str(sid), "--queue", "default"]) == 0
    made = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert made["reproduces"] == sid and made["pinned"]["queue"] == "default"
    assert main(["--home", home, "competition", "reproduce-top", world.slug, "--phase", "1", "--top", "1"]) == 0
    done = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert [r["reproduces"] for r in done["reproductions"]] == [sid]
    assert main(["--home", home, "competition", "reproduce-top", world.slug, "--phase", "1", "--top", "0"]) == 1
    assert "from 1 to 100" in capsys.readouterr().err
