"""Roles and what each may do. One table, read by the API and (later) the console.

- admin: manages users, their sites and API tokens; reads and acts on everything.
- supervisor: reads and acts on the work orders of their sites; reads their evidence.
- auditor: reads everything and exports it (audit trail included); places and releases legal
  holds on evidence (preserving the archive); acts on nothing in the case flow.
- integration: a system, not a person (a 12345 hotline, a residents' reporting form, a city
  tool): files reports into the case flow and reads them back through Open311. No evidence.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["ALL_SITES_ROLES", "ROLE_PERMISSIONS", "Permission", "Role", "can", "parse_role"]


class Role(StrEnum):
    ADMIN = "admin"
    SUPERVISOR = "supervisor"
    AUDITOR = "auditor"
    INTEGRATION = "integration"


class Permission(StrEnum):
    ORDERS_READ = "orders.read"
    ORDERS_ACT = "orders.act"
    EVIDENCE_READ = "evidence.read"
    EVIDENCE_HOLD = "evidence.hold"  # place or release a legal hold (central.retention.holds)
    REPORTS_FILE = "reports.file"
    OPEN311_READ = "open311.read"
    AUDIT_READ = "audit.read"
    AUDIT_EXPORT = "audit.export"
    USERS_READ = "users.read"
    USERS_MANAGE = "users.manage"


_READ_ALL = frozenset(
    {
        Permission.ORDERS_READ,
        Permission.EVIDENCE_READ,
        Permission.OPEN311_READ,
        Permission.AUDIT_READ,
        Permission.AUDIT_EXPORT,
        Permission.USERS_READ,
    }
)

ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.ADMIN: frozenset(Permission),
    Role.SUPERVISOR: frozenset(
        {Permission.ORDERS_READ, Permission.ORDERS_ACT, Permission.EVIDENCE_READ, Permission.OPEN311_READ}
    ),
    Role.AUDITOR: _READ_ALL | {Permission.EVIDENCE_HOLD},
    Role.INTEGRATION: frozenset({Permission.REPORTS_FILE, Permission.OPEN311_READ}),
}

# Roles whose holders see every site whatever their site list says: an admin manages all of
# them and an auditor must be able to read everything. The others see only their own sites.
ALL_SITES_ROLES = frozenset({Role.ADMIN, Role.AUDITOR})


def can(role: Role, permission: Permission) -> bool:
    return permission in ROLE_PERMISSIONS[role]


def parse_role(value: str) -> Role:
    """The Role named `value`; ValueError naming the valid ones otherwise."""
    try:
        return Role(value)
    except ValueError:
        raise ValueError(f"unknown role {value!r}: use one of {', '.join(r.value for r in Role)}") from None
