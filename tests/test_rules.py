"""The rule router: the baseline behaves as documented."""

import pytest

from router_ml import RuleRouter, Tier


@pytest.mark.parametrize(
    "prompt, tier",
    [
        ("x " * 210_000, Tier.COMPLEX),  # ~105k tokens
        ("x " * 50_000, Tier.MEDIUM),  # ~25k tokens
        ("Please refactor this function", Tier.MEDIUM),
        ("We need a security audit of the login flow", Tier.MEDIUM),
        ("Translate 'cat' into French", Tier.SIMPLE),
        ("Classify the sentiment of: great!", Tier.SIMPLE),
        ("What is the boiling point of water?", Tier.SIMPLE),
        ("Write a haiku about rain", Tier.MEDIUM),  # nothing matched
    ],
)
def test_rules(prompt, tier):
    assert RuleRouter().decide(prompt)[0] is tier


def test_depth_words_win_over_light_words_and_reason_is_given():
    tier, why = RuleRouter().decide("Translate the architecture document")
    assert tier is Tier.MEDIUM and "architecture" in why


def test_length_beats_words():
    tier, why = RuleRouter().decide("translate this: " + "word " * 90_000)
    assert tier is Tier.COMPLEX and "tokens" in why
