"""The registrar's adverts in memory, indexed the way discovery asks for them.

The store is the record: :mod:`finp2p.governance.registrar` writes every advert there first, its announcement
included, in one commit (up to store revision 0011 an index table was written beside it). This index is loaded from
the store when the registrar first needs it and then updated by the registrar after each commit, so that a query is
a dictionary lookup and a bisection instead of a database read and a parse. The registrar is its store's only
writer of adverts. An organization's adverts are replaced, never deleted, and expire in place: a query leaves out
the expired ones, as the store's did.

A permissioned network has thousands of organizations at most: ten thousand adverts take some tens of megabytes.
"""

from __future__ import annotations

import bisect
import json
from collections.abc import Iterable

from sqlmodel import Session, col, select

from finp2p.network import adverts as adv
from finp2p.network.adverts import Advert
from finp2p.store.models import AdvertRow


def index_keys(a: Advert) -> set[tuple[str, str]]:
    """The (kind, value) pairs under which ``a`` is found: its capabilities, ledgers, groups and resources."""
    keys = {("capability", p) for p in a.capabilities}
    keys |= {("ledger", v) for v in a.ledgers}
    keys |= {("group", v) for v in a.groups}
    keys |= {("resource", r.resource_id) for r in a.resources}
    return keys


class AdvertIndex:
    def __init__(self, adverts: Iterable[Advert] = ()) -> None:
        self._adverts: dict[str, Advert] = {}
        self._orgs: list[str] = []  # every organization, sorted: pages of "all"
        self._by: dict[tuple[str, str], list[str]] = {}  # (kind, value) → its organizations, sorted
        #: The digest of each view handed out, by organization, then by the resource entries the view holds.
        self._digests: dict[str, dict[tuple[str, ...], str]] = {}
        self._whole_digests: dict[str, str] = {}  # of the views that are the advert itself, as most are
        for a in adverts:
            self.put(a)

    @classmethod
    def load(cls, s: Session) -> AdvertIndex:
        """Every advert the store holds (verified when it was stored)."""
        documents = s.exec(select(AdvertRow.document).order_by(col(AdvertRow.org_id)))
        return cls(Advert.from_dict(json.loads(document)) for document in documents)

    def __len__(self) -> int:
        return len(self._adverts)

    def put(self, a: Advert) -> None:
        """Hold ``a`` in place of its organization's older advert (an older one than held is ignored: two commits'
        updates may arrive in either order)."""
        held = self._adverts.get(a.org_id)
        if held is not None and held.sequence >= a.sequence:
            return
        old = index_keys(held) if held is not None else set()
        new = index_keys(a)
        for key in old - new:
            orgs = self._by[key]
            del orgs[bisect.bisect_left(orgs, a.org_id)]
            if not orgs:
                del self._by[key]
        for key in new - old:
            bisect.insort(self._by.setdefault(key, []), a.org_id)
        if held is None:
            bisect.insort(self._orgs, a.org_id)
        self._adverts[a.org_id] = a
        self._digests.pop(a.org_id, None)
        self._whole_digests.pop(a.org_id, None)

    def get(self, org_id: str) -> Advert | None:
        return self._adverts.get(org_id)

    def find(self, by: str, value: str | list[str] | None, cursor: str, limit: int, now_ms: int) -> list[Advert]:
        """Up to ``limit`` unexpired adverts matching ``by``/``value`` after ``cursor``, in organization order."""
        if by == "org":
            orgs: list[str] = [value] if isinstance(value, str) else []
        elif by == "orgs":
            orgs = sorted(set(value or ()))
        elif by == "all":
            orgs = self._orgs
        else:
            orgs = self._by.get((by, value), []) if isinstance(value, str) else []
        found: list[Advert] = []
        for i in range(bisect.bisect_right(orgs, cursor), len(orgs)):  # by index: a slice copied the rest
            a = self._adverts.get(orgs[i])
            if a is not None and a.expires_ms > now_ms:
                found.append(a)
                if len(found) == limit:
                    break
        return found

    def digest(self, view: Advert) -> str:
        """The digest naming ``view`` (one of these adverts as one asker sees it) in a page of references
        (:func:`finp2p.network.adverts.view_digest`), computed once per view."""
        held = self._adverts.get(view.org_id)
        if view is held:  # the advert itself (no resource entries were left out): one lookup
            whole = self._whole_digests.get(view.org_id)
            if whole is None:
                whole = self._whole_digests[view.org_id] = adv.view_digest(view.to_dict())
            return whole
        if held is None or held.sequence != view.sequence:
            return adv.view_digest(view.to_dict())  # replaced meanwhile: not remembered under the newer one
        views = self._digests.setdefault(view.org_id, {})
        key = tuple(r.resource_id for r in view.resources)
        hit = views.get(key)
        if hit is None:
            hit = views[key] = adv.view_digest(view.to_dict())
        return hit
