"""The built-in compliance checks (their hooks are :mod:`finp2p.builtins.compliance_rules`), configured in the
``[compliance]`` section:

- ``blocked_fin_ids``: FinIDs that may neither send nor receive (a sanctions or freeze list);
- ``max_quantity``: per-asset ceilings on the quantity of one operation (``{"orgB:102:bond" = 1000000}``);
- ``require_kyc``: when true, both parties' information must carry ``kyc_status = "verified"``.

With an empty section (the default) nothing is checked.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from finp2p.compliance import TransferCheck, Violation
from finp2p.config import Settings

SECTION = "compliance"


class ComplianceSection(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    blocked_fin_ids: list[str] = Field(default_factory=list)
    max_quantity: dict[str, int] = Field(default_factory=dict)
    require_kyc: bool = False


def violations(check: TransferCheck, settings: Settings) -> list[Violation]:
    rules = settings.sections.get(SECTION)
    if not isinstance(rules, ComplianceSection):
        return []
    found: list[Violation] = []
    blocked = {f.lower() for f in rules.blocked_fin_ids}
    for role, fin_id in (("source", check.source), ("destination", check.destination)):
        if fin_id and fin_id.lower() in blocked:
            found.append(Violation("blocked-party", f"the {role} {fin_id} is on the blocked list"))
    ceiling = rules.max_quantity.get(check.asset_id)
    if ceiling is not None and check.quantity > ceiling:
        found.append(
            Violation("max-quantity", f"{check.quantity} exceeds the ceiling of {ceiling} for {check.asset_id}")
        )
    if rules.require_kyc:
        parties = (
            ("source", check.source, check.source_info),
            ("destination", check.destination, check.destination_info),
        )
        for role, fin_id, info in parties:
            if fin_id and info.get("kyc_status") != "verified":
                found.append(Violation("kyc", f"the {role}'s KYC status is not verified"))
    return found
