"""Deployment package sizes: each built function and the built layer, zipped as ``sam deploy`` zips them."""

from __future__ import annotations

import os
import tempfile
import zipfile
from pathlib import Path
from typing import Final

from local.bench.analysis import MB, PackageSize

LAYER_ZIPPED_TARGET: Final = 15 * MB
UNZIPPED_LIMIT: Final = 250 * MB  # function code plus all its layers, unzipped


def package_size(name: str, root: Path, *, group_under: str = "") -> PackageSize:
    """Zip ``root``'s contents (deflate, default level) to a temporary file and measure it.

    Zipped bytes are also summed per top-level entry below ``group_under`` (``python`` for a layer), with
    ``*.dist-info`` folded into their package's name as far as the name allows.
    """
    unzipped = 0
    files = 0
    by_entry: dict[str, int] = {}
    with tempfile.TemporaryFile() as handle:
        with zipfile.ZipFile(handle, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for directory, subdirectories, names in os.walk(root):
                subdirectories.sort()
                for filename in sorted(names):
                    path = Path(directory) / filename
                    archive.write(path, path.relative_to(root).as_posix())
                    unzipped += path.stat().st_size
                    files += 1
            for info in archive.infolist():
                entry = _entry(info.filename, group_under)
                by_entry[entry] = by_entry.get(entry, 0) + info.compress_size
        zipped = handle.tell()
    return PackageSize(name=name, zipped=zipped, unzipped=unzipped, files=files, zipped_by_entry=by_entry)


def _entry(filename: str, group_under: str) -> str:
    parts = filename.split("/")
    if group_under and parts[0] == group_under and len(parts) > 1:
        parts = parts[1:]
    top = parts[0]
    if top.endswith((".dist-info", ".data")):
        top = top.split("-")[0].lower()
    return top.removesuffix(".py")


def pycache_size(root: Path) -> int:
    """Bytes of ``.pyc`` files under ``root`` (what precompiling adds to a package, unzipped)."""
    return sum(path.stat().st_size for path in root.rglob("*.pyc"))
