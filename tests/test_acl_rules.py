from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from finp2p.privacy.acl import AclRule, resource_matches


@pytest.mark.parametrize(
    ("subject", "action", "resource"),
    [
        ("org", "read", "x"),
        ("org:a b", "read", "x"),
        ("group:", "read", "x"),
        ("*", "delete", "x"),
        ("*", "read", ""),
    ],
)
def test_malformed_rules_are_refused(subject: str, action: str, resource: str) -> None:
    with pytest.raises(ValueError):
        AclRule(subject, action, resource)


def test_patterns() -> None:
    assert resource_matches("orgA:101:*", "orgA:101:alice")
    assert not resource_matches("orgA:101:*", "orgA:102:alice")
    assert resource_matches("*:102:*", "orgB:102:bond")
    assert resource_matches("orgA:101:a?[1]", "orgA:101:a?[1]")  # only * is special
    assert not resource_matches("orgA:101:a?", "orgA:101:ab")


ids = st.text(alphabet=st.characters(exclude_categories=["Cs"], exclude_characters="*\n"), min_size=1)


@given(ids)
def test_an_exact_pattern_matches_only_itself(resource: str) -> None:
    assert resource_matches(resource, resource)
    assert not resource_matches(resource, resource + "x")


@given(ids, ids)
def test_a_prefix_pattern_matches_every_extension(prefix: str, rest: str) -> None:
    assert resource_matches(prefix + "*", prefix + rest)
