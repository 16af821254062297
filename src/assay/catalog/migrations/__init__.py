"""Alembic migrations of the catalog schema.

``HEAD_REVISION`` must name the newest file in ``versions/``; a test checks it, so opening an
up-to-date catalog can compare one string instead of loading Alembic.
"""

HEAD_REVISION = "0009"
