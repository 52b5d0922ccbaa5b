"""The built-in compliance checks' hooks: the ``[compliance]`` section and the transfer check, both in
:mod:`finp2p.builtins.compliance_checks`, imported when a hook is called (loading the plugins, as ``finp2p
--help`` does to list their commands, builds no settings model)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from finp2p.hookspecs import hookimpl

if TYPE_CHECKING:
    from pydantic import BaseModel

    from finp2p.compliance import TransferCheck, Violation
    from finp2p.config import Settings


@hookimpl
def finp2p_config_sections() -> dict[str, type[BaseModel]]:
    from finp2p.builtins.compliance_checks import SECTION, ComplianceSection

    return {SECTION: ComplianceSection}


@hookimpl
def finp2p_check_transfer(check: TransferCheck, settings: Settings) -> list[Violation]:
    from finp2p.builtins.compliance_checks import violations

    return violations(check, settings)
