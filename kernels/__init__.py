"""Execution environments: the runtime images submissions run in, and how a worker finds them.

`build.build_image` makes a runtime (`compete image build`; `build_all` makes
the default and the legacy one, `compete image build --all`);
`images.resolve_image` picks the image of a step on a worker (aliases such as
`codalab/codalab-legacy:*` -> the legacy runtime, `images.LEGACY_ALIASES`);
`docker_available` tells whether this machine has a usable Docker engine.
"""
from .build import DEFAULT_IMAGE, LEGACY_IMAGE, BuildError, build_all, build_image
from .images import ImageChoice, docker_available, image_digest, resolve_image, resolve_image_choice

__all__ = ["DEFAULT_IMAGE", "LEGACY_IMAGE", "BuildError", "ImageChoice", "build_all", "build_image",
           "docker_available", "image_digest", "resolve_image", "resolve_image_choice"]
