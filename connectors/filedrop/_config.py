"""The ``filedrop`` connector's config: the folder, and which files ask which service."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from connectors._config import RequesterConfig

__all__ = ["BatchRule", "FiledropConfig", "SubjectColumn"]

_SERVICE_ID = r"^[a-z0-9-]+(\.[a-z0-9-]+)*\.v[0-9]+$"


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SubjectColumn(_Model):
    """The inquiry's subject (who it is about) taken from a column."""

    kind: str = Field(description="Subject kind, e.g. PERSON or COMPANY.")
    column: str = Field(description="The column holding the subject's id.")


class BatchRule(_Model):
    """Files whose name matches ``pattern`` ask ``service``, one inquiry per row."""

    pattern: str = Field(description="Glob on the file name: verify-*.csv, *.xml.")
    service: str = Field(pattern=_SERVICE_ID, description="Full service id, e.g. x.y.v1.")
    purpose: str | None = Field(
        default=None, description="The purpose of every row; a `purpose` column overrides it."
    )
    columns: dict[str, str] = Field(
        default_factory=dict,
        description="Request field → column name, where they differ (default: same name).",
    )
    subject: SubjectColumn | None = None
    deadline: float | None = Field(
        default=None, gt=0, description="Seconds each inquiry may take; unset: the service's."
    )
    format: Literal["csv", "xml"] | None = Field(
        default=None, description="File format; unset: from the extension (.csv, .xml)."
    )


class FiledropConfig(RequesterConfig):
    """A requester connector reading batch files from a folder, writing results beside them."""

    kind: Literal["filedrop"] = "filedrop"
    folder: Path = Field(description="The drop folder (read and written by the connector).")
    batches: tuple[BatchRule, ...] = Field(
        min_length=1, description="File patterns and what they ask; the first match wins."
    )
    settle_seconds: float = Field(
        default=2.0,
        ge=0,
        description="A file is taken once unchanged this long (a writer may still be at it); "
        "names starting with '.' or ending .tmp/.part are never taken.",
    )
    max_file_bytes: int = Field(
        default=64 * 1024 * 1024, gt=0, description="Larger files are refused (an .errors file)."
    )
