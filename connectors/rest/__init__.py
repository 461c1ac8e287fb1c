"""The ``rest`` provider connector: answers inquiries by calling an HTTP JSON API (httpx).

Per service binding: method, a URL path template (``/persons/{payload.national_id}``), query
parameters, a JSON body and headers, all in the mapping language of
:mod:`connectors._mapping`; the JSON response is mapped into the response payload. A status in
``not_found_status`` (404 by default) answers ``NOT_FOUND``; timeouts, connection failures,
429 and 5xx are retriable (backoff, circuit breaker); other 4xx answer ``ERROR`` with the code
``HTTP_<status>``. Auth: a bearer token or basic credentials, as secrets.
"""

from connectors.rest._config import BasicAuth, BearerAuth, RestBinding, RestConfig
from connectors.rest._connector import RestConnector

__all__ = ["BasicAuth", "BearerAuth", "RestBinding", "RestConfig", "RestConnector"]
