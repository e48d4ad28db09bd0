"""Competition bundles: import (CodaLab v1.5 and Codabench v2), storage, export.

    with load_bundle("bundle.zip", dataset_exists=store.has_dataset) as bundle:
        spec = store_bundle_data(bundle, store)   # every DataRef is a store key
    export_bundle(spec, store, Path("out.zip"))   # imports back to the same spec

Bad bundles raise `BundleError`, whose `problems` say `file: key: message`.
"""
from .datasets import canonical_zip_bytes, store_bundle_data
from .init import init_bundle, template_names
from .model import (
    BundleError,
    ColumnSpec,
    CompetitionSpec,
    DataRef,
    LeaderboardSpec,
    PageSpec,
    PhaseSpec,
    Problem,
    TaskSpec,
)
from .reader import LoadedBundle, load_bundle
from .sanitize import render_page, sanitize_html
from .summary import summarize
from .unpack import UnpackLimits
from .writer import export_bundle

__all__ = [
    "BundleError", "ColumnSpec", "CompetitionSpec", "DataRef", "LeaderboardSpec", "LoadedBundle", "PageSpec",
    "PhaseSpec", "Problem", "TaskSpec", "UnpackLimits", "canonical_zip_bytes", "export_bundle", "init_bundle",
    "load_bundle", "render_page", "sanitize_html", "store_bundle_data", "summarize", "template_names",
]
