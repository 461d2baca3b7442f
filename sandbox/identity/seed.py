"""Sample citizens (test accounts). Seeding inserts missing rows and never overwrites."""

from __future__ import annotations

from typing import List, NamedTuple

from sqlalchemy.engine import Engine

from sandbox.common import transaction
from sandbox.identity.models import Base, Citizen


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


def seed_identity(engine: Engine) -> int:
    """Create the tables and the sample citizens; returns how many rows were added."""
    Base.metadata.create_all(engine)
    added = 0
    with transaction(engine) as session:
        for row in SEED_CITIZENS:
            if session.get(Citizen, row.id_number) is None:
                session.add(Citizen(**row._asdict()))
                added += 1
    return added
