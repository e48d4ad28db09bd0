"""The template of the judge kernel spec (`kernel.json` and its logo).

`compete kernel install` (hub_extension/cli_kernel.py) copies this folder and
writes the argv of the installing environment's Python, the image and the
limits into `kernel.json`.  As it stands, the template is a working spec for
the default runtime image wherever `python3` is the project's Python:
`jupyter kernelspec install kernels/kernelspec --name judge`.
"""
from pathlib import Path

TEMPLATE_DIR = Path(__file__).resolve().parent
FILES = ("kernel.json", "logo-svg.svg")
