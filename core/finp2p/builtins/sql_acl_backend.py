"""The built-in ACL backend: rules and groups in the node's SQL store."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, delete, select

from finp2p.clock import now_ms
from finp2p.privacy.acl import AclBackend, AclRule
from finp2p.store import Store
from finp2p.store.models import AclGroupMemberRow, AclRuleRow


class SqlAclBackend(AclBackend):
    def __init__(self, store: Store) -> None:
        self.store = store

    async def grant(self, rule: AclRule) -> AclRule:
        def op(s: Session) -> AclRule:
            found = _find(s, rule)
            if found is None:
                row = AclRuleRow(subject=rule.subject, action=rule.action, resource=rule.resource, created_ms=now_ms())
                s.add(row)
                s.flush()
                found = row
            return _to_rule(found)

        try:
            return await self.store.run(op)
        except IntegrityError:  # granted concurrently by another writer: the rule exists
            return await self.store.run(lambda s: _to_rule(_find(s, rule)))  # type: ignore[arg-type]

    async def withdraw(self, rule: AclRule) -> bool:
        def op(s: Session) -> bool:
            found = _find(s, rule)
            if found is None:
                return False
            s.delete(found)
            return True

        return await self.store.run(op)

    async def rules(self, *, subject: str | None = None, resource: str | None = None) -> list[AclRule]:
        def op(s: Session) -> list[AclRule]:
            q = select(AclRuleRow).order_by(col(AclRuleRow.id))
            if subject is not None:
                q = q.where(AclRuleRow.subject == subject)
            if resource is not None:
                q = q.where(AclRuleRow.resource == resource)
            return [_to_rule(r) for r in s.exec(q)]

        return await self.store.run(op)

    async def set_group(self, group: str, org_ids: set[str]) -> None:
        def op(s: Session) -> None:
            s.exec(delete(AclGroupMemberRow).where(col(AclGroupMemberRow.group_name) == group))
            s.add_all(AclGroupMemberRow(group_name=group, org_id=o) for o in sorted(org_ids))

        await self.store.run(op)

    async def groups_of(self, org_id: str) -> frozenset[str]:
        return await self.store.run(lambda s: _groups_of(s, org_id))

    async def group_members(self, group: str) -> frozenset[str]:
        return await self.store.run(
            lambda s: frozenset(s.exec(select(AclGroupMemberRow.org_id).where(AclGroupMemberRow.group_name == group)))
        )

    async def is_allowed(self, org_id: str, action: str, resource: str) -> bool:
        def op(s: Session) -> bool:
            groups = _groups_of(s, org_id)
            subjects = ["*", f"org:{org_id}", *(f"group:{g}" for g in groups)]
            candidates = s.exec(
                select(AclRuleRow).where(
                    col(AclRuleRow.subject).in_(subjects), col(AclRuleRow.action).in_([action, "*"])
                )
            )
            return any(_to_rule(r).covers(org_id, groups, action, resource) for r in candidates)

        return await self.store.run(op)


def _find(s: Session, rule: AclRule) -> AclRuleRow | None:
    return s.exec(
        select(AclRuleRow).where(
            AclRuleRow.subject == rule.subject,
            AclRuleRow.action == rule.action,
            AclRuleRow.resource == rule.resource,
        )
    ).first()


def _groups_of(s: Session, org_id: str) -> frozenset[str]:
    return frozenset(s.exec(select(AclGroupMemberRow.group_name).where(AclGroupMemberRow.org_id == org_id)))


def _to_rule(row: AclRuleRow) -> AclRule:
    return AclRule(subject=row.subject, action=row.action, resource=row.resource, id=row.id)
