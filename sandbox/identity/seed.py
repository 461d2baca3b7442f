"""Sample citizens (test accounts). Seeding inserts missing rows and never overwrites."""

from __future__ import annotations

import logging
from typing import List, NamedTuple

from sqlalchemy import inspect
from sqlalchemy.engine import Engine

from sandbox.common import transaction
from sandbox.identity.models import Base, Citizen

logger = logging.getLogger("sandbox.identity")


class SeedCitizen(NamedTuple):
    id_number: str
    full_name: str
    phone: str


SEED_CITIZENS: List[SeedCitizen] = [
    SeedCitizen("001090001234", "Nguyễn Văn An", "0912345678"),
    SeedCitizen("079185005678", "Trần Thị Bình", "0987654321"),
    SeedCitizen("031200001111", "Lê Minh Cường", "0903111222"),
    SeedCitizen("048195002222", "Phạm Thị Dung", "0935222333"),
    SeedCitizen("036301003333", "Vũ Thị Hoa", "0976333444"),
]


def stale_tables(engine: Engine) -> List[str]:
    """Identity tables in the database whose columns differ from the models (older schema)."""
    inspector = inspect(engine)
    existing = set(inspector.get_table_names())
    return [
        table.name
        for table in Base.metadata.sorted_tables
        if table.name in existing
        and {column["name"] for column in inspector.get_columns(table.name)}
        != set(table.columns.keys())
    ]


def seed_identity(engine: Engine) -> int:
    """Create the tables and the sample citizens; returns how many rows were added.

    A database left by an older version (different columns) is not migrated: everything in
    it is seed data or short-lived, so the identity tables are dropped and created afresh.
    """
    stale = stale_tables(engine)
    if stale:
        logger.warning(
            "identity tables with an older schema (%s): dropping and recreating all identity "
            "tables with the seed data",
            ", ".join(stale),
        )
        Base.metadata.drop_all(engine)
    Base.metadata.create_all(engine)
    added = 0
    with transaction(engine) as session:
        for row in SEED_CITIZENS:
            if session.get(Citizen, row.id_number) is None:
                session.add(Citizen(**row._asdict()))
                added += 1
    return added
