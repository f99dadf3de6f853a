"""Users, workspaces and API keys: which user a request acts as, and so whose quota it spends.

What Reply's documentation pages say (openapi/README.md, "Keys and whose budget a call spends"):

- A **user API key** acts as the one user it belongs to.
- A workspace's **Master API key** (one per workspace) acts as any user of that workspace, named by an
  ``X-User-Id: <id>`` or ``X-User-Email: <address>`` header (one is enough), and as the workspace owner without
  either. Every call runs with the permissions of the user it acts as, as with that user's own key.
- **Quotas are per user**: every call made for a user, by any key, spends that user's 100 a minute and 3,000
  an hour.

What the pages leave open is assumed, each one a switch in assumptions.py: a user key sent with either header
(``user_key_refuses_acting_user``), a header naming nobody of the workspace (``acting_user_not_found``), and
whether a workspace's owner and admins see every sequence of it (``only_owner_sees_sequences``).

Sequences belong to one workspace. A key never sees another workspace's sequences: they are not found (404, a
bulk item ``notFound``), and lists leave them out. User ids and keys are unique across the simulator; an email
is unique within its workspace (compared case-insensitively).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Final

from local.stand_ins.reply_simulator.models import (
    ALL_SCOPES,
    DEFAULT_WORKSPACE_ID,
    KEY_OWNER_USER_ID,
    MAX_SEQUENCE_ID,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping

    from local.stand_ins.reply_simulator.assumptions import Assumptions
    from local.stand_ins.reply_simulator.models import SimulatedSequence

USER_ROLES: Final = ("owner", "admin", "member")
# Roles that see every sequence of their workspace when Assumptions.only_owner_sees_sequences is off.
WORKSPACE_WIDE_ROLES: Final = frozenset({"owner", "admin"})
USER_ID_HEADER: Final = "X-User-Id"
USER_EMAIL_HEADER: Final = "X-User-Email"
ACTING_USER_NOT_ALLOWED_CODE: Final = "actingUser.notAllowed"
ACTING_USER_NOT_FOUND_CODE: Final = "actingUser.notFound"


@dataclass(frozen=True, slots=True)
class SimulatedUser:
    """A user of one workspace: an id, an email address, and a role (exactly one owner per workspace)."""

    id: int
    email: str
    role: str = "member"

    def __post_init__(self) -> None:
        if isinstance(self.id, bool) or not isinstance(self.id, int) or not 1 <= self.id <= MAX_SEQUENCE_ID:
            raise ValueError("user ids must be integers between 1 and 2147483647")
        if not isinstance(self.email, str) or "@" not in self.email or self.email.strip() != self.email:
            raise ValueError("a user's email must be an address such as ann@example.com")
        if self.role not in USER_ROLES:
            raise ValueError("a user's role must be one of: " + ", ".join(USER_ROLES))

    @classmethod
    def from_json(cls, payload: Mapping[str, object]) -> SimulatedUser:
        """Build a user from admin JSON: {"id": 7, "email": "ann@example.com", "role": "member"}."""
        return cls(
            id=_integer(payload.get("id"), "a user's 'id'"),
            email=_string(payload.get("email"), "a user's 'email'"),
            role=_string(payload.get("role", "member"), "a user's 'role'"),
        )

    def to_json(self) -> dict[str, object]:
        """Return the user as the admin API shows it."""
        return {"id": self.id, "email": self.email, "role": self.role}


@dataclass(frozen=True, slots=True)
class UserKey:
    """A user API key: it acts as `user_id`, with these scopes. The key itself is never shown (repr or admin)."""

    key: str = field(repr=False)
    user_id: int
    scopes: frozenset[str] = ALL_SCOPES

    def __post_init__(self) -> None:
        _check_key(self.key)
        if isinstance(self.scopes, str):
            raise TypeError("give a key an iterable of scopes, not a single string")
        object.__setattr__(self, "scopes", frozenset(self.scopes))

    def to_json(self) -> dict[str, object]:
        """Return the key's user and scopes, never the key."""
        return {"user_id": self.user_id, "scopes": sorted(self.scopes)}


@dataclass(frozen=True, slots=True)
class SimulatedWorkspace:
    """One Reply workspace: its users (exactly one `owner`), their user keys, and its optional Master API key.

    The master key's scopes are its own: the user it acts as lends it permissions (which sequences it sees),
    not scopes.
    """

    id: int
    users: tuple[SimulatedUser, ...]
    user_keys: tuple[UserKey, ...] = ()
    master_key: str | None = field(default=None, repr=False)
    master_key_scopes: frozenset[str] = ALL_SCOPES

    def __post_init__(self) -> None:
        if isinstance(self.id, bool) or not isinstance(self.id, int) or self.id < 1:
            raise ValueError("workspace ids must be integers of at least 1")
        object.__setattr__(self, "users", tuple(self.users))
        object.__setattr__(self, "user_keys", tuple(self.user_keys))
        if isinstance(self.master_key_scopes, str):
            raise TypeError("give the master key an iterable of scopes, not a single string")
        object.__setattr__(self, "master_key_scopes", frozenset(self.master_key_scopes))
        owners = [user for user in self.users if user.role == "owner"]
        if len(owners) != 1:
            raise ValueError("workspace " + str(self.id) + " needs exactly one user with the role 'owner'")
        ids = [user.id for user in self.users]
        if len(set(ids)) != len(ids):
            raise ValueError("workspace " + str(self.id) + " lists a user id twice")
        emails = [user.email.casefold() for user in self.users]
        if len(set(emails)) != len(emails):
            raise ValueError("workspace " + str(self.id) + " lists an email twice")
        for user_key in self.user_keys:
            if user_key.user_id not in ids:
                raise ValueError(
                    f"a user key of workspace {self.id} belongs to user {user_key.user_id}, who is not in it"
                )
        keys = [user_key.key for user_key in self.user_keys]
        if self.master_key is not None:
            _check_key(self.master_key)
            keys.append(self.master_key)
        if len(set(keys)) != len(keys):
            raise ValueError("workspace " + str(self.id) + " uses one key twice")

    @property
    def owner(self) -> SimulatedUser:
        """Return the workspace owner (whom the master key acts as without X-User-Id or X-User-Email)."""
        return next(user for user in self.users if user.role == "owner")

    def user(self, user_id: int) -> SimulatedUser | None:
        """Return the user with this id, if the workspace has one."""
        return next((user for user in self.users if user.id == user_id), None)

    def user_by_email(self, email: str) -> SimulatedUser | None:
        """Return the user with this email (compared case-insensitively), if the workspace has one."""
        wanted = email.strip().casefold()
        return next((user for user in self.users if user.email.casefold() == wanted), None)

    @classmethod
    def from_json(cls, payload: Mapping[str, object]) -> SimulatedWorkspace:
        """Build a workspace from admin JSON (snake_case names, camelCase accepted too)::

            {"id": 2, "users": [{"id": 21, "email": "olga@b.example", "role": "owner"}, {"id": 22, ...}],
             "master_key": "<key>", "master_key_scopes": ["sequences:read", ...],
             "user_keys": {"<key>": {"user_id": 22, "scopes": ["sequences:read", ...]}}}

        Scopes default to every scope; `master_key` and `user_keys` may be left out.
        """
        users = _json_field(payload, "users", "users")
        if not isinstance(users, list) or not all(isinstance(user, dict) for user in users):
            raise ValueError("'users' must be a list of {id, email, role} objects")
        master_key = _json_field(payload, "master_key", "masterKey")
        if master_key is not None and not isinstance(master_key, str):
            raise ValueError("'master_key' must be a string or null")
        return cls(
            id=_integer(payload.get("id"), "a workspace's 'id'"),
            users=tuple(SimulatedUser.from_json(user) for user in users),
            user_keys=_user_keys_from_json(_json_field(payload, "user_keys", "userKeys")),
            master_key=master_key,
            master_key_scopes=_scopes(
                _json_field(payload, "master_key_scopes", "masterKeyScopes", default=sorted(ALL_SCOPES)),
                "'master_key_scopes'",
            ),
        )

    def to_json(self) -> dict[str, object]:
        """Return the workspace as the admin API shows it: users, and whose keys there are, never a key."""
        return {
            "id": self.id,
            "owner_user_id": self.owner.id,
            "users": [user.to_json() for user in self.users],
            "user_keys": [user_key.to_json() for user_key in self.user_keys],
            "master_key": self.master_key is not None,
            "master_key_scopes": sorted(self.master_key_scopes),
        }


DEFAULT_USERS: Final = (
    SimulatedUser(KEY_OWNER_USER_ID, "user1@example.com", role="owner"),
    SimulatedUser(2, "user2@example.com"),
)


def default_workspace(api_keys: Mapping[str, frozenset[str]]) -> SimulatedWorkspace:
    """The workspace of the default seed: user 1 (its owner, holding `api_keys`) and user 2; no master key."""
    return SimulatedWorkspace(
        id=DEFAULT_WORKSPACE_ID,
        users=DEFAULT_USERS,
        user_keys=tuple(UserKey(key, KEY_OWNER_USER_ID, scopes) for key, scopes in api_keys.items()),
    )


@dataclass(frozen=True, slots=True)
class ActingUser:
    """The user a request acts as: their id, workspace and role, and whether a master key made the call."""

    user_id: int
    workspace_id: int
    role: str
    via_master_key: bool = False

    def finds(self, sequence: SimulatedSequence | None) -> bool:
        """Return whether the sequence exists for this user: it is in their workspace (else: not found)."""
        return sequence is not None and sequence.workspace_id == self.workspace_id

    def sees(self, sequence: SimulatedSequence, assumptions: Assumptions) -> bool:
        """Return whether this user may see and act on a sequence of their workspace (else: forbidden)."""
        if sequence.owner_user_id == self.user_id:
            return True
        return not assumptions.only_owner_sees_sequences and self.role in WORKSPACE_WIDE_ROLES


# Who the default workspace's keys act as: rules.py's default when no request is involved (the CLI's seed table).
DEFAULT_ACTING_USER: Final = ActingUser(KEY_OWNER_USER_ID, DEFAULT_WORKSPACE_ID, "owner")


@dataclass(frozen=True, slots=True)
class KeyGrant:
    """An accepted key: the user the request acts as, and the key's scopes."""

    acting_user: ActingUser
    scopes: frozenset[str]


@dataclass(frozen=True, slots=True)
class IdentityRefusal:
    """A request with an accepted key that acts as nobody (a 400 problem); it spends no user's quota."""

    status: int
    detail: str
    code: str | None


@dataclass(frozen=True, slots=True)
class _KeyEntry:
    workspace_id: int
    user_key: UserKey | None  # None: the workspace's master key


class Directory:
    """The simulator's workspaces behind one lock, and the key each request's Authorization header names.

    The first workspace is the primary one: the legacy `api_keys` of ReplySimulator are its owner's user keys.
    """

    def __init__(self, workspaces: Iterable[SimulatedWorkspace]) -> None:
        self._lock = threading.Lock()
        ordered = list(workspaces)
        if not ordered:
            raise ValueError("the simulator needs at least one workspace")
        self._primary_id = ordered[0].id
        self._workspaces: dict[int, SimulatedWorkspace] = {}
        self._keys: dict[str, _KeyEntry] = {}
        self._install(ordered)

    @property
    def primary_workspace_id(self) -> int:
        """Return the id of the first workspace (the default seed's and the legacy keys')."""
        return self._primary_id

    def workspaces(self) -> list[SimulatedWorkspace]:
        """Return every workspace, in the order they were added."""
        with self._lock:
            return list(self._workspaces.values())

    def workspace(self, workspace_id: int) -> SimulatedWorkspace | None:
        """Return one workspace, if there is one with this id."""
        with self._lock:
            return self._workspaces.get(workspace_id)

    def workspace_of_user(self, user_id: int) -> int | None:
        """Return the id of the workspace a user belongs to, if any."""
        with self._lock:
            return next((ws.id for ws in self._workspaces.values() if ws.user(user_id) is not None), None)

    def set_workspace(self, workspace: SimulatedWorkspace) -> None:
        """Add a workspace, or replace the one with its id (its users and keys); ValueError on a clash."""
        with self._lock:
            self._install([*(ws for ws in self._workspaces.values() if ws.id != workspace.id), workspace])

    def set_master_key(self, workspace_id: int, key: str | None, scopes: Iterable[str] = ALL_SCOPES) -> None:
        """Give a workspace this Master API key (replacing its master key), or none with None."""
        self._update(workspace_id, lambda ws: replace(ws, master_key=key, master_key_scopes=frozenset(scopes)))

    def add_user(self, workspace_id: int, user: SimulatedUser, user_keys: Mapping[str, Iterable[str]]) -> None:
        """Add a user to a workspace, or replace the one with its id (keeping its keys), with more user keys."""

        def with_user(workspace: SimulatedWorkspace) -> SimulatedWorkspace:
            users = tuple(other for other in workspace.users if other.id != user.id)
            keys = tuple(UserKey(key, user.id, frozenset(scopes)) for key, scopes in user_keys.items())
            return replace(workspace, users=(*users, user), user_keys=workspace.user_keys + keys)

        self._update(workspace_id, with_user)

    def set_primary_owner_keys(self, api_keys: Mapping[str, frozenset[str]]) -> None:
        """Make these the primary workspace owner's user keys (the legacy keys), replacing that owner's others."""

        def with_owner_keys(workspace: SimulatedWorkspace) -> SimulatedWorkspace:
            others = tuple(user_key for user_key in workspace.user_keys if user_key.user_id != workspace.owner.id)
            owner_keys = tuple(UserKey(key, workspace.owner.id, scopes) for key, scopes in api_keys.items())
            return replace(workspace, user_keys=owner_keys + others)

        self._update(self._primary_id, with_owner_keys)

    def resolve(
        self, api_key: str, user_id_header: str | None, user_email_header: str | None, assumptions: Assumptions
    ) -> KeyGrant | IdentityRefusal | None:
        """Who a request with this key and these headers acts as; None for a key nobody has (a 401)."""
        with self._lock:
            entry = self._keys.get(api_key)
            workspace = self._workspaces.get(entry.workspace_id) if entry is not None else None
        if entry is None or workspace is None:
            return None
        names_someone = user_id_header is not None or user_email_header is not None
        if entry.user_key is not None:
            if names_someone and assumptions.user_key_refuses_acting_user:
                return IdentityRefusal(
                    400,
                    "Only a workspace's Master API key can act as another user: a user API key acts as its own "
                    "user. Send it without " + USER_ID_HEADER + " and " + USER_EMAIL_HEADER + ".",
                    ACTING_USER_NOT_ALLOWED_CODE,
                )
            user = workspace.user(entry.user_key.user_id)
            assert user is not None  # SimulatedWorkspace checks that every user key's user is in it
            return KeyGrant(ActingUser(user.id, workspace.id, user.role), entry.user_key.scopes)
        named = _named_user(workspace, user_id_header, user_email_header) if names_someone else workspace.owner
        if isinstance(named, str):
            code = ACTING_USER_NOT_FOUND_CODE if assumptions.acting_user_not_found else None
            return IdentityRefusal(400, named, code)
        acting_user = ActingUser(named.id, workspace.id, named.role, via_master_key=True)
        return KeyGrant(acting_user, workspace.master_key_scopes)

    def _update(self, workspace_id: int, change: Callable[[SimulatedWorkspace], SimulatedWorkspace]) -> None:
        with self._lock:
            current = self._workspaces.get(workspace_id)
            if current is None:
                raise ValueError("there is no workspace " + str(workspace_id))
            updated = change(current)
            self._install([updated if ws.id == workspace_id else ws for ws in self._workspaces.values()])

    def _install(self, workspaces: list[SimulatedWorkspace]) -> None:
        """Check the workspaces together (unique ids, user ids and keys) and make them current (lock held)."""
        by_id: dict[int, SimulatedWorkspace] = {}
        keys: dict[str, _KeyEntry] = {}
        user_workspaces: dict[int, int] = {}
        for workspace in workspaces:
            if workspace.id in by_id:
                raise ValueError("two workspaces have the id " + str(workspace.id))
            by_id[workspace.id] = workspace
            for user in workspace.users:
                if user.id in user_workspaces:
                    both = f"{user_workspaces[user.id]} and {workspace.id}"
                    raise ValueError(
                        f"user {user.id} is in workspaces {both}: user ids are unique across the simulator"
                    )
                user_workspaces[user.id] = workspace.id
            entries = [(user_key.key, _KeyEntry(workspace.id, user_key)) for user_key in workspace.user_keys]
            if workspace.master_key is not None:
                entries.append((workspace.master_key, _KeyEntry(workspace.id, None)))
            for key, entry in entries:
                if key in keys:
                    raise ValueError("a key is used twice (keys are unique across the simulator)")
                keys[key] = entry
        if self._primary_id not in by_id:
            raise ValueError("the primary workspace " + str(self._primary_id) + " cannot be removed")
        self._workspaces, self._keys = by_id, keys


def _named_user(
    workspace: SimulatedWorkspace, user_id_header: str | None, user_email_header: str | None
) -> SimulatedUser | str:
    """The user the X-User-Id / X-User-Email headers name in this workspace, or why they name nobody."""
    by_id: SimulatedUser | None = None
    if user_id_header is not None:
        text = user_id_header.strip()
        if not text.isdecimal() or not text.isascii():
            return USER_ID_HEADER + " must be a user id (a positive integer); got '" + user_id_header + "'."
        by_id = workspace.user(int(text))
        if by_id is None:
            return "No user with " + USER_ID_HEADER + " " + text + " in this workspace."
    by_email: SimulatedUser | None = None
    if user_email_header is not None:
        by_email = workspace.user_by_email(user_email_header)
        if by_email is None:
            return "No user with " + USER_EMAIL_HEADER + " '" + user_email_header.strip() + "' in this workspace."
    if by_id is not None and by_email is not None and by_id != by_email:
        return USER_ID_HEADER + " and " + USER_EMAIL_HEADER + " name two different users."
    named = by_id or by_email
    assert named is not None  # at least one header was given, and each one found its user
    return named


def _check_key(key: object) -> None:
    if not isinstance(key, str) or not key or any(char.isspace() for char in key):
        raise ValueError("an API key must be a non-empty string without whitespace")


def _json_field(payload: Mapping[str, object], snake: str, camel: str, default: object = None) -> object:
    if snake in payload:
        return payload[snake]
    return payload.get(camel, default)


def _integer(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(name + " must be an integer")
    return value


def _string(value: object, name: str) -> str:
    if not isinstance(value, str):
        raise ValueError(name + " must be a string")
    return value


def _scopes(value: object, name: str) -> frozenset[str]:
    if not isinstance(value, list) or not all(isinstance(scope, str) for scope in value):
        raise ValueError(name + " must be a list of scope strings")
    return frozenset(value)


def _user_keys_from_json(value: object) -> tuple[UserKey, ...]:
    """User keys from admin JSON: {"<key>": {"user_id": 22, "scopes": [...]}} (scopes default to every scope)."""
    if value is None:
        return ()
    if not isinstance(value, dict):
        raise ValueError("'user_keys' must be an object of key to {user_id, scopes}")
    user_keys: list[UserKey] = []
    for key, grant in value.items():
        if not isinstance(grant, dict):
            raise ValueError("each user key must map to {user_id, scopes}")
        user_keys.append(
            UserKey(
                key,
                _integer(_json_field(grant, "user_id", "userId"), "a user key's 'user_id'"),
                _scopes(grant.get("scopes", sorted(ALL_SCOPES)), "a user key's 'scopes'"),
            )
        )
    return tuple(user_keys)
