"""The REST API of similarity signals, under `{prefix}api/v1/competitions/{slug}/similarity` (organizers).

`GET similarity[?min=0.9]`: the pairs of submissions alike at or above `min`
(default: `c.Compete.similarity_threshold`), with what could not be read;
`GET similarity/{pair}`: one pair with both sources as read and normalized;
`PATCH similarity/{pair}` `{"verdict": "copy"|"independent"|"unsure"|null}`:
the organizers' review.  See `app.similarity`.
"""
from __future__ import annotations

from typing import Any, Optional

from ..errors import PlatformError
from .base import ApiHandler

PAIR = r"(?P<pair>[0-9]{1,18})"


def min_argument(raw: Optional[str]) -> Optional[float]:
    """`?min=` as a number between 0 and 1 (None: not given)."""
    if raw is None or raw == "":
        return None
    try:
        value = float(raw)
    except ValueError:
        raise PlatformError(f"?min= must be a number between 0 and 1, got {raw[:40]!r}") from None
    if not 0.0 <= value <= 1.0:
        raise PlatformError(f"?min= must be between 0 and 1, got {raw[:40]!r}")
    return value


class SimilarityHandler(ApiHandler):
    async def get(self, slug: str) -> None:
        minimum = min_argument(self.get_query_argument("min", None))
        self.write_json(await self.run_blocking(self.platform.similarity_pairs, slug, self.require_login(), minimum))


class SimilarityPairHandler(ApiHandler):
    async def get(self, slug: str, pair: str) -> None:
        self.write_json(await self.run_blocking(self.platform.similarity_pair, slug, int(pair), self.require_login()))

    async def patch(self, slug: str, pair: str) -> None:
        actor = self.require_login()
        body = self.json_body()
        if "verdict" not in body:
            raise PlatformError('send {"verdict": "copy" | "independent" | "unsure" | null}')
        self.write_json(await self.run_blocking(self.platform.set_similarity_verdict, slug, int(pair),
                                                body["verdict"], actor))


def similarity_api_routes(comp: str) -> list[Any]:
    """The similarity routes under a competition's API path `comp`."""
    return [
        (rf"{comp}/similarity", SimilarityHandler),
        (rf"{comp}/similarity/{PAIR}", SimilarityPairHandler),
    ]
