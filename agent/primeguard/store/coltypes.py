"""Column types that behave the same on SQLite and PostgreSQL.

* :class:`UTCDateTime`: aware UTC datetimes in and out (``timestamptz`` on PostgreSQL, ISO text on
  SQLite); naive datetimes are refused.
* :class:`ExactDecimal`: exact decimals: unconstrained ``NUMERIC`` on PostgreSQL (any precision and
  scale, so nothing is ever rounded on insert), ``TEXT`` on SQLite (SQLite's NUMERIC is a float).
* :data:`JSONDoc`: ``JSONB`` on PostgreSQL, ``JSON`` (text) on SQLite.
* :data:`BigIntPK`: 64-bit autoincrement keys (``INTEGER PRIMARY KEY`` on SQLite, which is already 64-bit).
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect

from primeguard.store.codec import as_utc, exact_decimal


class UTCDateTime(sa.TypeDecorator[datetime]):
    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        utc = as_utc(value)
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        moment: datetime = value
        if moment.tzinfo is None:
            return moment.replace(tzinfo=UTC)
        return moment.astimezone(UTC)


class ExactDecimal(sa.TypeDecorator[Decimal]):
    impl = sa.Numeric
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> sa.types.TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(sa.Text())
        return dialect.type_descriptor(sa.Numeric(asdecimal=True))

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        dec = exact_decimal(value)
        return str(dec) if dialect.name == "sqlite" else dec

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        return value if isinstance(value, Decimal) else Decimal(str(value))


JSONDoc = sa.JSON().with_variant(JSONB(), "postgresql")
BigIntPK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
