"""Who is calling: the actor every audit row names, the role that decides, the sites they see."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from central.auth.roles import ALL_SITES_ROLES, Permission, Role, can

__all__ = ["Principal"]


@dataclass(frozen=True)
class Principal:
    """`actor` is 'user:<username>' or 'token:<token name>'; `via` says how they proved it
    ('token:<token id>' or 'session'). `sites` None means every site."""

    actor: str
    role: Role
    sites: frozenset[str] | None
    via: str

    def can(self, permission: Permission) -> bool:
        return can(self.role, permission)

    def sees_site(self, site: str) -> bool:
        return self.role in ALL_SITES_ROLES or self.sites is None or site in self.sites

    def visible_sites(self) -> frozenset[str] | None:
        """The sites this principal may see, or None for all of them (for SQL filters)."""
        return None if self.role in ALL_SITES_ROLES else self.sites

    @classmethod
    def system(cls, name: str) -> Principal:
        """The central itself (ingest, the deadline clock): 'system:<name>', admin rights."""
        return cls(actor=f"system:{name}", role=Role.ADMIN, sites=None, via="internal")

    @staticmethod
    def site_set(sites: Iterable[str] | None) -> frozenset[str] | None:
        return None if sites is None else frozenset(sites)
