"""Loading DataFusion and pyarrow without stopping the event loop for long.

The first query imports them (about 250 MB of shared libraries). ``dlopen`` runs with
the GIL held, so when the libraries are not in the page cache the event loop stood
still while the disk was read (140 ms measured after dropping the caches). Reading the
files first, on the query thread, fills the page cache with the GIL released (a read
gives it back); ``dlopen`` then maps pages that are already in memory.
"""

from __future__ import annotations

import glob
import importlib.util
import os

_PACKAGES = ("pyarrow", "datafusion")
_CHUNK = 1 << 20


def read_shared_libraries() -> None:
    for package in _PACKAGES:
        spec = importlib.util.find_spec(package)
        if spec is None or spec.origin is None:
            continue
        folder = os.path.dirname(spec.origin)
        for path in glob.glob(os.path.join(folder, "*.so*")):
            try:
                with open(path, "rb", buffering=0) as library:
                    while library.read(_CHUNK):
                        pass
            except OSError:  # unreadable: the import will tell
                continue
