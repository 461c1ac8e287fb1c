"""Kafka ACLs from the catalog: each principal gets what its role needs, nothing more (pure).

DESIGN.md "Security model": the topic a record came from authenticates its writer, so only
agency A may write ``<prefix>.out.A`` and only A may read ``<prefix>.in.A`` and
``<prefix>.replies.A``. Four roles:

- **agency** A (principal ``User:A`` by default, e.g. its SCRAM user): WRITE+DESCRIBE on its
  ``out`` topic, READ+DESCRIBE on its ``in`` and ``replies`` topics. A provider (an agency
  that provides a service) also gets READ+WRITE+DESCRIBE on its ``desk`` topic, WRITE+DESCRIBE
  on ``<prefix>.dlq`` (the provider SDK dead-letters undecodable inquiries), and READ on its
  consumer groups: ``<prefix>.provider.A`` (the SDK's default) and any group starting with
  ``<prefix>.provider.A.``. Clients read replies by manual assignment: no group needed, except
  durable readers (requester connectors), which commit offsets in ``<prefix>.requester.A.*``
  (READ on that group prefix, for every agency). The
  same prefixes, ``<prefix>.requester.A.`` and for providers ``<prefix>.provider.A.``, hold
  the transactional ids an agency's own transactional producers may use (WRITE+DESCRIBE; the
  SDK itself uses none). Since Kafka 3.0, WRITE on a topic also allows idempotent producing
  (KIP-679).
- **workers** (the stream workers): READ on every ``out`` topic, WRITE on every ``in`` and
  ``replies`` topic (prefixed bindings, so a new agency needs no new worker ACL), READ+WRITE
  on ``audit`` and ``state`` (their changelog), READ on ``catalog`` (the live catalog; the
  operator publishes it), WRITE on ``dlq``, their consumer group ``<prefix>.workers`` and
  their transactional ids ``<prefix>.workers-<partition>`` (prefix ``<prefix>.workers-``).
- **evaluation** (the evaluation processor, faust): READ on ``audit``, READ+WRITE on
  ``compliance``, WRITE on ``dlq``, its group ``<prefix>.evaluation`` and the topics faust
  creates for itself (``<prefix>.evaluation-*``: table changelogs, the assignor's topic).
- **operator** (``exchange topics apply``, ``exchange dlq``): everything under ``<prefix>.``
  (create, alter, configs, read, write: a replay writes to the topic a dead letter came
  from) and the replay's transactional id.

Bindings render as ``kafka-acls.sh --add`` command lines (one per principal and resource)
and as JSON with the field names of Kafka's ``AclBinding``.
"""

from __future__ import annotations

import enum
import shlex
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from itertools import groupby

from exchange._catalog_model import Catalog
from exchange._topology import Topics

__all__ = [
    "AclBinding",
    "Operation",
    "PatternType",
    "Principals",
    "ResourceType",
    "agency_acls",
    "catalog_acls",
    "evaluation_acls",
    "operator_acls",
    "render_commands",
    "to_json",
    "worker_acls",
]


class ResourceType(enum.StrEnum):
    """Kafka resource types the bus grants on."""

    TOPIC = "TOPIC"
    GROUP = "GROUP"
    TRANSACTIONAL_ID = "TRANSACTIONAL_ID"


class PatternType(enum.StrEnum):
    """Whether the resource name is exact or a prefix."""

    LITERAL = "LITERAL"
    PREFIXED = "PREFIXED"


class Operation(enum.StrEnum):
    """Kafka ACL operations, as Kafka's Java enum names them."""

    READ = "READ"
    WRITE = "WRITE"
    DESCRIBE = "DESCRIBE"
    CREATE = "CREATE"
    ALTER = "ALTER"
    DESCRIBE_CONFIGS = "DESCRIBE_CONFIGS"
    ALTER_CONFIGS = "ALTER_CONFIGS"

    @property
    def cli_name(self) -> str:
        """The spelling ``kafka-acls.sh --operation`` takes (``DescribeConfigs``)."""
        return "".join(word.capitalize() for word in self.value.split("_"))


@dataclass(frozen=True, order=True, slots=True)
class AclBinding:
    """One ALLOW rule; fields as in Kafka's ``AclBinding`` (pattern + entry)."""

    principal: str
    resource_type: ResourceType
    resource_name: str
    pattern_type: PatternType
    operation: Operation
    permission_type: str = "ALLOW"
    host: str = "*"


@dataclass(frozen=True, slots=True)
class Principals:
    """How roles map to Kafka principals; ``agency`` is a template with ``{agency}``."""

    agency: str = "User:{agency}"
    worker: str = "User:exchange-worker"
    operator: str = "User:exchange-operator"
    evaluation: str = "User:exchange-evaluation"

    def of_agency(self, code: str) -> str:
        """The principal of agency ``code``."""
        return self.agency.format(agency=code)


_R, _W, _D = Operation.READ, Operation.WRITE, Operation.DESCRIBE
_TOPIC, _GROUP, _TXN = ResourceType.TOPIC, ResourceType.GROUP, ResourceType.TRANSACTIONAL_ID
_LIT, _PRE = PatternType.LITERAL, PatternType.PREFIXED


def _grant(
    principal: str,
    resource: ResourceType,
    name: str,
    pattern: PatternType,
    *operations: Operation,
) -> list[AclBinding]:
    return [AclBinding(principal, resource, name, pattern, op) for op in operations]


def agency_acls(topics: Topics, agency: str, principal: str, *, provider: bool) -> list[AclBinding]:
    """What agency ``agency`` needs: its own three topics; as a provider, desk, dlq, groups."""
    acls = [
        *_grant(principal, _TOPIC, topics.out(agency), _LIT, _W, _D),
        *_grant(principal, _TOPIC, topics.in_(agency), _LIT, _R, _D),
        *_grant(principal, _TOPIC, topics.replies(agency), _LIT, _R, _D),
        # Durable reply readers (requester connectors) keep offsets in their own groups.
        *_grant(principal, _GROUP, topics.requester_group(agency, ""), _PRE, _R),
        *_grant(principal, _TXN, topics.requester_group(agency, ""), _PRE, _W, _D),
    ]
    if provider:
        group = topics.provider_group(agency)
        acls += [
            *_grant(principal, _TOPIC, topics.desk(agency), _LIT, _R, _W, _D),
            *_grant(principal, _TOPIC, topics.dlq, _LIT, _W, _D),
            *_grant(principal, _GROUP, group, _LIT, _R),
            # The dot ends the agency code (codes never hold one): TAX's prefix does not
            # cover TAX-OFFICE's groups.
            *_grant(principal, _GROUP, f"{group}.", _PRE, _R),
            *_grant(principal, _TXN, f"{group}.", _PRE, _W, _D),
        ]
    return acls


def worker_acls(topics: Topics, principal: str) -> list[AclBinding]:
    """What the stream workers need."""
    p = topics.prefix
    return [
        *_grant(principal, _TOPIC, f"{p}.out.", _PRE, _R, _D),
        *_grant(principal, _TOPIC, f"{p}.in.", _PRE, _W, _D),
        *_grant(principal, _TOPIC, f"{p}.replies.", _PRE, _W, _D),
        *_grant(principal, _TOPIC, topics.audit, _LIT, _R, _W, _D),
        *_grant(principal, _TOPIC, topics.state, _LIT, _R, _W, _D),
        *_grant(principal, _TOPIC, topics.catalog, _LIT, _R, _D),
        *_grant(principal, _TOPIC, topics.dlq, _LIT, _W, _D),
        *_grant(principal, _GROUP, topics.worker_group, _LIT, _R),
        # The engine's producers: <group>-<partition number> (agents/_engine.py).
        *_grant(principal, _TXN, f"{topics.worker_group}-", _PRE, _W, _D),
    ]


def evaluation_acls(topics: Topics, principal: str) -> list[AclBinding]:
    """What the evaluation processor needs."""
    evaluation = topics.evaluation_group
    return [
        *_grant(principal, _TOPIC, topics.audit, _LIT, _R, _D),
        *_grant(principal, _TOPIC, topics.compliance, _LIT, _R, _W, _D),
        *_grant(principal, _TOPIC, topics.dlq, _LIT, _W, _D),
        *_grant(principal, _GROUP, evaluation, _LIT, _R),
        # faust creates its tables' changelogs itself: <prefix>.evaluation-<table>-changelog.
        *_grant(principal, _TOPIC, f"{evaluation}-", _PRE, Operation.CREATE, _R, _W, _D),
    ]


def operator_acls(topics: Topics, principal: str) -> list[AclBinding]:
    """What ``exchange topics apply`` and ``exchange dlq show|replay`` need."""
    admin = (
        Operation.CREATE,
        Operation.ALTER,
        Operation.DESCRIBE,
        Operation.DESCRIBE_CONFIGS,
        Operation.ALTER_CONFIGS,
        _R,
        _W,
    )
    return [
        *_grant(principal, _TOPIC, f"{topics.prefix}.", _PRE, *admin),
        *_grant(principal, _TXN, topics.replay_transactional_id, _LIT, _W, _D),
    ]


def catalog_acls(catalog: Catalog, topics: Topics, principals: Principals) -> list[AclBinding]:
    """Every binding the catalog implies: agencies in catalog order, then workers, the
    evaluation processor, the operator."""
    providers = {service.provider for service in catalog.services}
    acls: list[AclBinding] = []
    for agency in catalog.agencies:
        principal = principals.of_agency(agency.code)
        acls += agency_acls(topics, agency.code, principal, provider=agency.code in providers)
    acls += worker_acls(topics, principals.worker)
    acls += evaluation_acls(topics, principals.evaluation)
    acls += operator_acls(topics, principals.operator)
    return acls


def render_commands(
    bindings: Iterable[AclBinding],
    *,
    bootstrap: str = "$BOOTSTRAP",
    command_config: str = "$ADMIN_CONFIG",
) -> list[str]:
    """``kafka-acls.sh --add`` lines, one per principal and resource, operations merged.

    ``bootstrap`` and ``command_config`` are written unquoted so that shell variables work.
    """
    lines = []
    for (principal, resource, name, pattern), group in groupby(bindings, key=_resource_key):
        operations = " ".join(f"--operation {b.operation.cli_name}" for b in group)
        flag = {_TOPIC: "--topic", _GROUP: "--group", _TXN: "--transactional-id"}[resource]
        lines.append(
            f"kafka-acls.sh --bootstrap-server {bootstrap} --command-config {command_config} "
            f"--add --allow-principal {shlex.quote(principal)} {operations} "
            f"{flag} {shlex.quote(name)} --resource-pattern-type {pattern.value.lower()}"
        )
    return lines


def _resource_key(binding: AclBinding) -> tuple[str, ResourceType, str, PatternType]:
    return (binding.principal, binding.resource_type, binding.resource_name, binding.pattern_type)


def to_json(bindings: Iterable[AclBinding]) -> list[dict[str, str]]:
    """Plain dicts, field names as in Kafka's ``AclBinding``."""
    return [{k: str(v) for k, v in asdict(binding).items()} for binding in bindings]
