"""The interface an ACL backend implements, and the rule model every backend shares.

A rule grants a *subject* an *action* on the resources a *pattern* matches:

- subject: ``org:<orgId>``, ``group:<name>`` (a named group of organizations) or ``*`` (any member);
- action: ``read``, ``subscribe``, ``write``, or ``*``;
- pattern: a resource id (``orgA:101:alice``) or a pattern with ``*`` wildcards (``orgA:101:*``).

Anything not granted is denied.
"""

from __future__ import annotations

import abc
import fnmatch
import re
from dataclasses import dataclass
from functools import lru_cache

ACTIONS = ("read", "subscribe", "write", "*")
_SUBJECT = re.compile(r"^(\*|org:[^\s:*][^\s*]*|group:[A-Za-z0-9_.-]+)$")
_PATTERN = re.compile(r"^[^\s]+$")


@dataclass(frozen=True)
class AclRule:
    subject: str
    action: str
    resource: str
    id: int | None = None

    def __post_init__(self) -> None:
        if not _SUBJECT.match(self.subject):
            raise ValueError(f"ACL subject {self.subject!r} must be 'org:<orgId>', 'group:<name>' or '*'")
        if self.action not in ACTIONS:
            raise ValueError(f"ACL action {self.action!r} must be one of {', '.join(ACTIONS)}")
        if not _PATTERN.match(self.resource):
            raise ValueError(f"ACL resource pattern {self.resource!r} must be a resource id or a pattern with '*'")

    def covers(self, org_id: str, groups: frozenset[str], action: str, resource: str) -> bool:
        """Whether this rule grants ``action`` on ``resource`` to ``org_id`` (a member of ``groups``)."""
        if self.action not in ("*", action):
            return False
        subject_ok = self.subject in ("*", f"org:{org_id}") or (
            self.subject.startswith("group:") and self.subject[6:] in groups
        )
        return subject_ok and resource_matches(self.resource, resource)


@lru_cache(maxsize=4096)
def _compiled(pattern: str) -> re.Pattern[str]:
    # Only '*' is special; '?' and '[' are ordinary characters in resource ids.
    return re.compile(fnmatch.translate(pattern.replace("[", "[[]").replace("?", "[?]")))


def resource_matches(pattern: str, resource: str) -> bool:
    if "*" not in pattern:
        return pattern == resource
    return _compiled(pattern).match(resource) is not None


class AclBackend(abc.ABC):
    """Where rules live and how they are evaluated. The node calls ``is_allowed`` on every private data request."""

    @abc.abstractmethod
    async def grant(self, rule: AclRule) -> AclRule:
        """Store ``rule`` (idempotent: granting an existing rule returns it) and return it with its id."""

    @abc.abstractmethod
    async def withdraw(self, rule: AclRule) -> bool:
        """Remove the rule with this subject, action and resource; ``False`` when there was none."""

    @abc.abstractmethod
    async def rules(self, *, subject: str | None = None, resource: str | None = None) -> list[AclRule]:
        """The stored rules, optionally only those of one subject or one exact resource pattern."""

    @abc.abstractmethod
    async def set_group(self, group: str, org_ids: set[str]) -> None:
        """Replace the members of a named group."""

    @abc.abstractmethod
    async def groups_of(self, org_id: str) -> frozenset[str]:
        """The named groups ``org_id`` belongs to."""

    @abc.abstractmethod
    async def group_members(self, group: str) -> frozenset[str]:
        """The organizations in a named group."""

    @abc.abstractmethod
    async def is_allowed(self, org_id: str, action: str, resource: str) -> bool:
        """Whether ``org_id`` may perform ``action`` on ``resource``."""
