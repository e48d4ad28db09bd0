"""Execution environments: the runtime image submissions run in, and how a worker finds it.

`build.build_image` makes the default runtime (`compete image build`);
`images.resolve_image` picks the image of a step on a worker;
`docker_available` tells whether this machine has a usable Docker engine.
"""
from .build import DEFAULT_IMAGE, BuildError, build_image
from .images import docker_available, image_digest, resolve_image

__all__ = ["DEFAULT_IMAGE", "BuildError", "build_image", "docker_available", "image_digest", "resolve_image"]
