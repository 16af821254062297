"""Keeping packs tidy (run by ``gc`` under the store's exclusive lock).

A pack whose live bytes (entries neither dead nor shadowed by a copy in another pack) fall
under ``REPACK_BELOW`` of its bytes is rewritten: its live blobs go to a new pack, which is
finished (index written) before the old pack is deleted, so a kill at any point leaves every
blob readable from at least one pack; a duplicate left by a kill is a shadowed entry, which
the next ``gc`` reclaims. A live blob whose bytes no longer match its hash is quarantined, not
copied. ``repack=True`` also moves loose blobs under the pack threshold into a pack.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from assay.core.hashing import hash_bytes
from assay.store.blobstore import BlobStore
from assay.store.packs import Location

REPACK_BELOW = 0.5


@dataclass(frozen=True)
class TidyReport:
    packs_rewritten: int
    loose_packed: int


def tidy(store: BlobStore, repack: bool = False) -> TidyReport:
    packs = store.packs
    contents = packs.contents()
    where = packs.all_locations()
    writer = store.pack_writer()
    rewritten: list[str] = []
    for name, entries in sorted(contents.items()):
        total = sum(length for _offset, length in entries.values())
        live = {
            blob_hash: Location(name, offset, length)
            for blob_hash, (offset, length) in entries.items()
            if where.get(blob_hash) == Location(name, offset, length)
        }
        if total and sum(loc.length for loc in live.values()) >= REPACK_BELOW * total:
            continue
        for blob_hash, location in sorted(live.items(), key=lambda item: item[1].offset):
            data = packs.read(location)
            if hash_bytes(data) != blob_hash:
                store.quarantine(blob_hash)
                continue
            writer.add(blob_hash, data)
        rewritten.append(name)
    loose_done: list[str] = []
    if repack and store.pack_threshold > 0:
        for blob in list(store.iter_loose()):
            if blob.size >= store.pack_threshold:
                continue
            with open(blob.path, "rb") as handle:
                data = handle.read()
            if hash_bytes(data) != blob.blob_hash:
                continue  # corrupted: left loose for verify to quarantine
            writer.add(blob.blob_hash, data)
            loose_done.append(blob.blob_hash)
    writer.finish()  # the new pack and its index exist before anything old goes
    for name in rewritten:
        packs.delete_pack(name)
    for blob_hash in loose_done:
        os.unlink(store.path_for(blob_hash))
    if rewritten:
        packs.prune_dead()
    return TidyReport(len(rewritten), len(loose_done))
