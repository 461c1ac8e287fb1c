"""Database failures sorted for the SDK: retriable (down, timed out) or permanent (refused).

SQLAlchemy wraps the driver's exception; the driver's SQLSTATE (PostgreSQL and most others)
says which: class 08 (connection), 53 (insufficient resources), 57P (shut down, starting up),
40001/40P01 (serialization failure, deadlock) are worth retrying; anything else (22 data,
42 syntax or privilege …) is the database refusing this query with these values. The message
kept is the driver's first line: never SQLAlchemy's rendering, which repeats the SQL.
"""

from __future__ import annotations

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError, SQLAlchemyError

from exchange._errors import ConnectorError, PermanentError, RetriableError

__all__ = ["translate"]

_RETRIABLE_CLASSES = ("08", "53", "57P", "40001", "40P01", "HY", "HYT00")


def translate(exc: BaseException, what: str) -> ConnectorError:
    """The SDK error for a failure of ``what`` (a query, a connection)."""
    if isinstance(exc, TimeoutError):
        return RetriableError(f"{what} timed out", code="LEGACY_TIMEOUT")
    if isinstance(exc, OSError):
        return RetriableError(f"{what}: cannot connect ({exc.strerror or type(exc).__name__})")
    if not isinstance(exc, SQLAlchemyError):
        return RetriableError(f"{what} failed: {type(exc).__name__}")
    state = _sqlstate(exc)
    message = _driver_message(exc)
    if _retriable(exc, state):
        return RetriableError(f"{what} failed: {message}")
    return PermanentError(f"{what} refused ({state or 'no SQLSTATE'}): {message}", code="SQL_ERROR")


def _retriable(exc: SQLAlchemyError, state: str | None) -> bool:
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    if state is not None:
        return state.startswith(_RETRIABLE_CLASSES)
    return isinstance(exc, OperationalError | InterfaceError)


def _sqlstate(exc: SQLAlchemyError) -> str | None:
    orig = getattr(exc, "orig", None)
    for name in ("sqlstate", "pgcode"):
        value = getattr(orig, name, None)
        if isinstance(value, str) and value:
            return value
    return None


def _driver_message(exc: SQLAlchemyError) -> str:
    orig = getattr(exc, "orig", None)
    text = str(orig) if orig is not None else type(exc).__name__
    return (text.splitlines() or [type(exc).__name__])[0][:300]
