"""The artifact inventory: every version of every object in the pipeline's bucket, as plain frozen data
(taken by ``harness.services.inventory.take_inventory``)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ObjectVersion:
    """One version of one key (or a delete marker: size 0, etag "")."""

    key: str
    version_id: str
    size: int
    etag: str
    last_modified: float  # unix seconds
    is_latest: bool
    is_delete_marker: bool


@dataclass(frozen=True)
class Inventory:
    """A full listing of ``bucket`` at ``taken_at``.

    ``versions`` keeps the server's order (per key, newest first). ``versioned``
    is True only when versioning was ``Enabled`` (an unversioned or suspended
    bucket hides overwrites). ``bodies`` holds (key, body) of the latest version
    of the keys the inventory was asked to read (see :func:`take_inventory`).
    """

    bucket: str
    taken_at: float
    versions: tuple[ObjectVersion, ...]
    versioned: bool
    bodies: tuple[tuple[str, bytes], ...] = ()

    def keys(self) -> tuple[str, ...]:
        """Every key that has any version or delete marker, sorted."""
        return tuple(sorted({v.key for v in self.versions}))

    def versions_of(self, key: str) -> tuple[ObjectVersion, ...]:
        """The versions and delete markers of ``key``, newest first."""
        return tuple(v for v in self.versions if v.key == key)

    def live_keys(self) -> tuple[str, ...]:
        """Keys whose latest version is an object, not a delete marker, sorted."""
        return tuple(sorted(v.key for v in self.versions if v.is_latest and not v.is_delete_marker))

    def body_of(self, key: str) -> bytes | None:
        """The body read for ``key``, or None if it was not read."""
        for name, body in self.bodies:
            if name == key:
                return body
        return None
