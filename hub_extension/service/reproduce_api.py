"""The REST API of run provenance, signed manifests and reproductions, under `{prefix}api/v1/`.

- `GET submissions/{id}/provenance`: each latest run with its provenance (organizers);
- `GET submissions/{id}/manifest`: the signed manifest, in its canonical form (organizers);
- `POST submissions/{id}/reproduce` `{"queue": name?}`: a reproduction pinned to what the
  submission ran with (organizers; its owner when the phase allows reproductions);
- `GET submissions/{id}/comparison`: an original and its reproduction side by side;
- `POST competitions/{slug}/phases/{n}/reproduce-top` `{"top": N, "queue": name?}`: the top N
  (1 to 100) of the phase's primary board reproduced (organizers);
- `GET manifest-key`: the public key manifests are signed with (Ed25519), for anyone, logged in or not.
"""
from __future__ import annotations

from typing import Any, Optional

from .. import manifest as signing
from ..app import PlatformError
from .base import ApiHandler


def _queue(body: dict[str, Any]) -> Optional[str]:
    queue = body.get("queue")
    if queue is not None and not isinstance(queue, str):
        raise PlatformError('"queue" must be a queue\'s name, e.g. {"queue": "gpu"}')
    return queue or None


class SubmissionProvenanceHandler(ApiHandler):
    async def get(self, submission_id: str) -> None:
        actor = self.require_login()
        runs = await self.run_blocking(self.platform.run_provenance, int(submission_id), actor)
        self.write_json({"submission": int(submission_id), "runs": runs})


class SubmissionManifestHandler(ApiHandler):
    async def get(self, submission_id: str) -> None:
        actor = self.require_login()
        document = await self.run_blocking(self.platform.submission_manifest, int(submission_id), actor)
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.set_header("Content-Disposition", f'attachment; filename="submission-{int(submission_id)}-manifest.json"')
        self.finish(signing.document_bytes(document))


class ManifestKeyHandler(ApiHandler):
    """No login needed: whoever holds a manifest checks it with this key."""

    async def prepare(self) -> None:
        pass

    async def get(self) -> None:
        key = await self.run_blocking(signing.load_signing_key, self.platform.config.home)
        self.write_json({"algorithm": signing.PUBLIC_ALGORITHM, "public_key": signing.public_key_hex(key),
                         "pem": signing.public_key_pem(key)})


class SubmissionReproduceHandler(ApiHandler):
    async def post(self, submission_id: str) -> None:
        actor = self.require_login()
        queue = _queue(self.json_body())
        made = await self.run_blocking(self.platform.reproduce, int(submission_id), actor, queue=queue)
        self.write_json(made, status=201)


class SubmissionComparisonHandler(ApiHandler):
    async def get(self, submission_id: str) -> None:
        actor = self.require_login()
        self.write_json(await self.run_blocking(self.platform.reproduction_comparison, int(submission_id), actor))


class PhaseReproduceTopHandler(ApiHandler):
    async def post(self, slug: str, number: str) -> None:
        actor = self.require_login()
        body = self.json_body()
        done = await self.run_blocking(self.platform.reproduce_top, slug, int(number), body.get("top"), actor,
                                       queue=_queue(body))
        self.write_json(done, status=201)


def reproduce_api_routes(comp: str, sub: str, number: str) -> list[Any]:
    """The routes under a competition's API path `comp` and a submission's `sub` (`number`: a phase's number)."""
    api = sub.rsplit("/submissions/", 1)[0]
    return [
        (rf"{api}/manifest-key", ManifestKeyHandler),
        (rf"{sub}/provenance", SubmissionProvenanceHandler),
        (rf"{sub}/manifest", SubmissionManifestHandler),
        (rf"{sub}/reproduce", SubmissionReproduceHandler),
        (rf"{sub}/comparison", SubmissionComparisonHandler),
        (rf"{comp}/phases/{number}/reproduce-top", PhaseReproduceTopHandler),
    ]
