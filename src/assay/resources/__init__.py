"""Octue-shaped data resources: Datafile, Dataset, Manifest and FilterSet.

The classes live in ``assay.core``; this face re-exports them under the names Octue users know
(``from octue.resources import Datafile, Dataset, Manifest`` becomes
``from assay.resources import ...``) and installs ``Manifest.download``'s transfer code
(``assay.bundles.manifest_download``: the core model does no I/O).
"""

from assay.bundles.manifest_download import download_manifest, install_downloader
from assay.core.datafile import Datafile
from assay.core.dataset import Dataset
from assay.core.filterset import FilterSet
from assay.core.manifest import Manifest, Reference, parse_reference

install_downloader()

__all__ = [
    "Datafile",
    "Dataset",
    "FilterSet",
    "Manifest",
    "Reference",
    "download_manifest",
    "parse_reference",
]
