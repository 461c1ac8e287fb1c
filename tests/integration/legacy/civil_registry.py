"""A legacy civil registry: a real SOAP 1.1 service with a WSDL (spyne, served by wsgiref).

    python civil_registry.py PORT

``VerifyPerson(national_id, birth_date, first_name, last_name)`` answers a ``PersonVerdict``;
an unknown id is the SOAP fault ``Client.NotFound``, a malformed one ``Client.InvalidId``.
The WSDL is at ``http://127.0.0.1:PORT/?wsdl``.
"""

from __future__ import annotations

import datetime as dt
import logging
import sys
import warnings
from typing import Any, TypedDict
from wsgiref.simple_server import WSGIRequestHandler, make_server

# spyne 2.14 still imports through six's meta path importer; harmless here.
warnings.simplefilter("ignore")

from spyne import (  # noqa: E402 - after the warnings filter
    Application,
    Boolean,
    ComplexModel,
    Date,
    Fault,
    ServiceBase,
    Unicode,
    rpc,
)
from spyne.protocol.soap import Soap11  # noqa: E402
from spyne.server.wsgi import WsgiApplication  # noqa: E402


class _Person(TypedDict):
    birth_date: str
    first_name: str
    last_name: str
    status: str
    alive: bool


PEOPLE: dict[str, _Person] = {
    "0012345678": {
        "birth_date": "1990-03-21",
        "first_name": "Sara",
        "last_name": "Ahmadi",
        "status": "ACTIVE",
        "alive": True,
    }
}


class PersonVerdict(ComplexModel):  # type: ignore[misc]  # spyne has no type information
    """What the registry says about the identity data sent."""

    __namespace__ = "urn:civil-registry"
    Status = Unicode
    BirthDateMatches = Boolean
    FirstNameMatch = Unicode
    LastNameMatch = Unicode
    Alive = Boolean


def _match(sent: str, recorded: str) -> str:
    if sent == recorded:
        return "EXACT"
    return "SIMILAR" if sent.lower() == recorded.lower() else "DIFFERENT"


class CivilRegistry(ServiceBase):  # type: ignore[misc]  # spyne has no type information
    """The registry's one operation."""

    # spyne's decorator has no type information.
    @rpc(Unicode, Date, Unicode, Unicode, _returns=PersonVerdict)  # type: ignore[untyped-decorator]
    def VerifyPerson(
        ctx: Any,  # noqa: N805 - spyne passes ctx
        national_id: str | None,
        birth_date: dt.date | None,
        first_name: str | None,
        last_name: str | None,
    ) -> PersonVerdict:
        if not national_id or not national_id.isdigit() or len(national_id) != 10:
            raise Fault(faultcode="Client.InvalidId", faultstring="malformed national id")
        person = PEOPLE.get(national_id)
        if person is None:
            raise Fault(faultcode="Client.NotFound", faultstring="no such person")
        return PersonVerdict(
            Status=person["status"],
            BirthDateMatches=str(birth_date) == person["birth_date"],
            FirstNameMatch=_match(first_name or "", person["first_name"]),
            LastNameMatch=_match(last_name or "", person["last_name"]),
            Alive=person["alive"],
        )


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        return


def main() -> None:
    logging.basicConfig(level=logging.ERROR)
    app = Application(
        [CivilRegistry],
        tns="urn:civil-registry",
        in_protocol=Soap11(validator="lxml"),
        out_protocol=Soap11(),
    )
    port = int(sys.argv[1])
    make_server("127.0.0.1", port, WsgiApplication(app), handler_class=_Quiet).serve_forever()


if __name__ == "__main__":
    main()
