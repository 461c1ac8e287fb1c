"""Each service's schema revisions as this process writes and reads them (pure, cached).

Payloads are written with the newest revision of the service's schema the catalog knows, and
read back resolved to that revision (fields added later appear with their defaults).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import structlog

from exchange._catalog_model import Catalog, Service
from exchange._codec import Codec, Schema
from exchange._errors import InquiryRejectedError
from exchange._models import RejectReason

log = structlog.get_logger("exchange.client")

__all__ = ["ServiceCache", "ServiceSchemas", "with_defaults"]


def _field_defaults(schema: Schema) -> dict[str, Any]:
    """Top-level fields that have a default, with it: filled in when a caller leaves them out
    (the codec's strict writer wants every field; the newest revision adds optional ones)."""
    return {f["name"]: f["default"] for f in schema.definition["fields"] if "default" in f}


def with_defaults(defaults: dict[str, Any], payload: dict[str, Any]) -> dict[str, Any]:
    """``payload`` with the missing defaulted fields filled in (no copy when none miss)."""
    if not defaults or defaults.keys() <= payload.keys():
        return payload
    return {**defaults, **payload}


@dataclass(frozen=True, slots=True)
class ServiceSchemas:
    """One service's codes and the schema revisions this process writes and reads."""

    service: Service
    request: Schema
    response: Schema
    request_defaults: dict[str, Any]
    response_defaults: dict[str, Any]

    @classmethod
    def of(cls, service: Service, codec: Codec) -> ServiceSchemas:
        """Resolve the newest request and response revisions of ``service`` in the store."""
        request, response = service.latest_request, service.latest_response
        if request is None or response is None:
            raise InquiryRejectedError(
                f"service {service.id} has no schemas in this catalog",
                reason=RejectReason.UNKNOWN_SERVICE,
            )
        store = codec.store
        request_schema = store.by_fingerprint(request.fingerprint)
        response_schema = store.by_fingerprint(response.fingerprint)
        return cls(
            service,
            request_schema,
            response_schema,
            _field_defaults(request_schema),
            _field_defaults(response_schema),
        )


class ServiceCache:
    """Service id → its schemas, resolved once per service and process."""

    def __init__(self, catalog: Catalog, codec: Codec) -> None:
        self._catalog = catalog
        self._codec = codec
        self._known: dict[str, ServiceSchemas] = {}

    def get(self, service_id: str) -> ServiceSchemas:
        """The service's schemas; :class:`InquiryRejectedError` if the catalog lacks it."""
        found = self._known.get(service_id)
        if found is None:
            service = self._catalog.service(service_id)
            if service is None:
                raise InquiryRejectedError(
                    f"service {service_id} is not in the catalog",
                    reason=RejectReason.UNKNOWN_SERVICE,
                )
            found = self._known[service_id] = ServiceSchemas.of(service, self._codec)
        return found

    def find(self, service_id: str) -> ServiceSchemas | None:
        """The service's schemas, or None if the catalog lacks it."""
        try:
            return self.get(service_id)
        except InquiryRejectedError:
            return None
