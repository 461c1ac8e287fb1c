"""The ``soap`` provider connector: answers inquiries by calling a WSDL operation (zeep).

Per service binding: the operation, its arguments as a template over the inquiry (mapping
language of :mod:`connectors._mapping`) and the response payload as a template over the
result (``$result.Status`` …, the result serialised to plain dicts). A SOAP fault answers
``ERROR`` with the fault's code (``Client.InvalidId``), or ``NOT_FOUND`` when its code is in
``not_found_faults``. Connection failures, timeouts and HTTP 5xx without a fault are
retriable (backoff, circuit breaker). The WSDL (a URL or a file) is loaded on first use, so
the connector starts even while the service is down.
"""

from connectors.soap._config import SoapBinding, SoapConfig
from connectors.soap._connector import SoapConnector

__all__ = ["SoapBinding", "SoapConfig", "SoapConnector"]
