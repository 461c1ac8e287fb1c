"""ACLs on a real cluster: read them all, create the missing ones (thin aiokafka I/O).

aiokafka 0.14's admin client has no ACL methods, but its protocol module carries Kafka's
``DescribeAcls`` (API key 29) and ``CreateAcls`` (30) requests at version 1, the first with
prefixed patterns (KIP-290) and still served by Kafka 4 (KIP-896 dropped only v0). They are
sent over a plain :class:`aiokafka.client.AIOKafkaClient` with the bus's security options;
any broker answers (KRaft forwards the change to the controller). The principal needs
DESCRIBE (to read) and ALTER (to create) on the CLUSTER resource: in practice a super user.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from types import TracebackType
from typing import Any, Self

from aiokafka.protocol.admin import (
    CreateAclsRequest_v1,
    DescribeAclsRequest_v1,
)
from aiokafka.protocol.api import Request

from exchange._acls import AclBinding
from exchange._acls_plan import AclPlan, ClusterAcl, plan_acls
from exchange._errors import BrokerError
from exchange._kafka import client_options, resolve_bootstrap, translate_kafka_error
from exchange._settings import ExchangeSettings

__all__ = ["AclAdmin", "apply_acls", "read_acl_plan"]

# Kafka's wire codes (org.apache.kafka.common.{resource,acl}): name <-> number.
_RESOURCE = {"ANY": 1, "TOPIC": 2, "GROUP": 3, "CLUSTER": 4, "TRANSACTIONAL_ID": 5,
             "DELEGATION_TOKEN": 6, "USER": 7}  # fmt: skip
_PATTERN = {"ANY": 1, "MATCH": 2, "LITERAL": 3, "PREFIXED": 4}
_OPERATION = {"ANY": 1, "ALL": 2, "READ": 3, "WRITE": 4, "CREATE": 5, "DELETE": 6, "ALTER": 7,
              "DESCRIBE": 8, "CLUSTER_ACTION": 9, "DESCRIBE_CONFIGS": 10, "ALTER_CONFIGS": 11,
              "IDEMPOTENT_WRITE": 12, "CREATE_TOKENS": 13, "DESCRIBE_TOKENS": 14}  # fmt: skip
_PERMISSION = {"ANY": 1, "DENY": 2, "ALLOW": 3}
#: Bindings per CreateAcls request: a national catalog implies thousands.
_CHUNK = 500


def _name(table: dict[str, int], code: int) -> str:
    return next((name for name, number in table.items() if number == code), f"UNKNOWN({code})")


class _DescribeAll(Request[DescribeAclsRequest_v1]):  # type: ignore[misc]  # aiokafka: untyped
    """DescribeAcls with the match-everything filter."""

    API_KEY = 29

    def build(self, request_struct_class: type[DescribeAclsRequest_v1]) -> DescribeAclsRequest_v1:
        any_ = 1
        return request_struct_class(any_, None, any_, None, None, any_, any_)


class _Create(Request[CreateAclsRequest_v1]):  # type: ignore[misc]  # aiokafka: untyped
    """CreateAcls with many creations in one request (aiokafka's own class sends one)."""

    API_KEY = 30

    def __init__(self, rows: Sequence[ClusterAcl]) -> None:
        self._rows = rows

    def build(self, request_struct_class: type[CreateAclsRequest_v1]) -> CreateAclsRequest_v1:
        creations = [
            (
                _RESOURCE[row.resource_type],
                row.resource_name,
                _PATTERN[row.pattern_type],
                row.principal,
                row.host,
                _OPERATION[row.operation],
                _PERMISSION[row.permission_type],
            )
            for row in self._rows
        ]
        return request_struct_class(creations)


class AclAdmin:
    """A connection for reading and creating ACLs: ``async with AclAdmin.for_settings(s):``."""

    def __init__(self, bootstrap: str, options: dict[str, Any], *, timeout: float) -> None:
        from aiokafka.client import AIOKafkaClient

        self.timeout = timeout
        self._client = AIOKafkaClient(
            bootstrap_servers=bootstrap, request_timeout_ms=round(timeout * 1000), **options
        )

    @classmethod
    def for_settings(cls, settings: ExchangeSettings) -> AclAdmin:
        """Connected to the configured cluster with the configured credentials."""
        return cls(
            resolve_bootstrap(settings), client_options(settings), timeout=settings.request_timeout
        )

    async def __aenter__(self) -> Self:
        await self._call("connect", self._client.bootstrap())
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._client.close()

    async def describe(self) -> list[ClusterAcl]:
        """Every ACL on the cluster."""
        response = await self._send("describe ACLs", _DescribeAll())
        _raise_for(response.error_code, response.error_message, "cannot describe ACLs")
        return [
            ClusterAcl(
                principal,
                _name(_RESOURCE, resource_type),
                name,
                _name(_PATTERN, pattern),
                _name(_OPERATION, operation),
                _name(_PERMISSION, permission),
                host,
            )
            for resource_type, name, pattern, acls in response.resources
            for principal, host, operation, permission in acls
        ]

    async def create(self, rows: Sequence[ClusterAcl]) -> None:
        """Create the bindings; a binding that exists already is not an error in Kafka."""
        for start in range(0, len(rows), _CHUNK):
            response = await self._send("create ACLs", _Create(rows[start : start + _CHUNK]))
            for code, message in response.creation_responses:
                _raise_for(code, message, "cannot create ACLs")

    async def _send(self, what: str, request: Request[Any]) -> Any:
        node = self._client.get_random_node()
        return await self._call(what, self._client.send(node, request))

    async def _call(self, what: str, operation: Any) -> Any:
        from aiokafka.errors import KafkaError

        try:
            async with asyncio.timeout(self.timeout * 2):
                return await operation
        except KafkaError as exc:
            raise translate_kafka_error(exc, f"cannot {what}") from exc
        except TimeoutError as exc:
            raise BrokerError(f"cannot {what}: no answer within {self.timeout * 2:g} s") from exc


def _raise_for(code: int, message: str | None, what: str) -> None:
    if code == 0:
        return
    from aiokafka.errors import for_code

    error = for_code(code)(message)
    raise translate_kafka_error(error, what)


async def read_acl_plan(admin: AclAdmin, desired: Sequence[AclBinding], prefix: str) -> AclPlan:
    """Read the cluster's ACLs and plan the way to ``desired``."""
    return plan_acls(desired, await admin.describe(), prefix=prefix)


async def apply_acls(
    admin: AclAdmin, desired: Sequence[AclBinding], prefix: str, *, within: float = 30.0
) -> AclPlan:
    """Create what is missing and wait until the broker enforces it; the plan carried out.

    A broker serves ACLs from its own copy of the cluster metadata, which follows the
    controller a moment behind: right after CreateAcls returns, a describe (and the
    authorizer) may not show the new bindings yet, so this waits until they do.
    """
    plan = await read_acl_plan(admin, desired, prefix)
    if plan.empty:
        return plan
    await admin.create(plan.create)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not set(plan.create) <= set(await admin.describe()):
        if loop.time() >= deadline:
            raise BrokerError(f"the new ACLs were not in force within {within:g} s")
        await asyncio.sleep(0.2)
    return plan
