"""Users, roles and API tokens: every API call and every audit row has an actor.

Passwords are argon2id hashes; tokens are stored only as sha256 and shown once. The console's
sessions and CSRF protection build on `authenticate_user` and `principal_of_user`.
"""

from central.auth.passwords import PasswordPolicyError, configure_hashing, hash_password, verify_password
from central.auth.principal import Principal
from central.auth.roles import ALL_SITES_ROLES, ROLE_PERMISSIONS, Permission, Role, can, parse_role
from central.auth.schema import ensure_schema
from central.auth.tokens import (
    ApiToken,
    TokenRefused,
    authenticate_token,
    create_token,
    list_tokens,
    revoke_token,
)
from central.auth.users import (
    User,
    UserError,
    add_user,
    authenticate_user,
    get_user,
    list_users,
    principal_of_user,
    set_disabled,
    set_password,
    set_role,
    set_sites,
)

__all__ = [
    "ALL_SITES_ROLES",
    "ROLE_PERMISSIONS",
    "ApiToken",
    "PasswordPolicyError",
    "Permission",
    "Principal",
    "Role",
    "TokenRefused",
    "User",
    "UserError",
    "add_user",
    "authenticate_token",
    "authenticate_user",
    "can",
    "configure_hashing",
    "create_token",
    "ensure_schema",
    "get_user",
    "hash_password",
    "list_tokens",
    "list_users",
    "parse_role",
    "principal_of_user",
    "revoke_token",
    "set_disabled",
    "set_password",
    "set_role",
    "set_sites",
    "verify_password",
]
