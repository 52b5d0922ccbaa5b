"""What kind of asset an asset id names: the ``assetType`` FinP2P's templates and receipts give it.

An asset id is opaque to a ledger: FinP2P assets are ``<org>:102:<id>``, payment assets are named by their code
(``USD``, ``USDC``). The type follows from the id alone, so a receipt's signed message can be rebuilt from the
receipt by anyone (:mod:`finp2p.assets.receipts`): ``finp2p`` for a FinP2P resource id, ``fiat`` for an ISO 4217
currency code (the codes FinP2P's API lists), ``cryptocurrency`` for any other code.
"""

from __future__ import annotations

import re

FINP2P = "finp2p"
FIAT = "fiat"
CRYPTOCURRENCY = "cryptocurrency"
ASSET_TYPES = frozenset({FINP2P, FIAT, CRYPTOCURRENCY})

_FINP2P_ID = re.compile(r"[^:]+:102:.+", re.DOTALL)
_ISO_4217 = """
    AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BRL BSD BTN BWP BYR BZD
    CAD CDF CHF CLP CNY COP CRC CUC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL GGP GHS
    GIP GMD GNF GTQ GYD HKD HNL HRK HTG HUF IDR ILS IMP INR IQD IRR ISK JEP JMD JOD JPY KES KGS KHR KMF
    KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRO MUR MVR MWK MXN MYR MZN
    NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR SBD SCR SDG SEK SGD
    SHP SLL SOS SPL SRD STD SVC SYP SZL THB TJS TMT TND TOP TRY TTD TVD TWD TZS UAH UGX USD UYU UZS VEF
    VND VUV WST XAF XCD XDR XOF XPF YER ZAR ZMW ZWD
"""
#: The currency codes of FinP2P's ``assetIdentifierValue`` (ISO 4217), as docs/receipts.md lists them.
CURRENCY_CODES = frozenset(_ISO_4217.split())


def asset_type_of(asset_id: str) -> str:
    """``finp2p``, ``fiat`` or ``cryptocurrency``: what ``asset_id`` names."""
    if _FINP2P_ID.fullmatch(asset_id):
        return FINP2P
    return FIAT if asset_id in CURRENCY_CODES else CRYPTOCURRENCY
