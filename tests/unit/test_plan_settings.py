"""``[plans]``: the hospital's plan policy, with sensible defaults and a message naming each bad key."""

import pytest

from portal.settings import PlanTier, Settings, SettingsError

SECRET = "s" * 40


def load(plans: dict) -> Settings:
    return Settings.from_document({"plans": plans}, {"CAREFRONT_SECRET_KEY": SECRET}, None)


def test_defaults_suit_a_community_hospital():
    policy = load({}).plans
    assert policy.tiers[0] == PlanTier(50_000, 6)
    assert policy.tiers[-1].up_to is None
    assert policy.minimum_monthly == 2_500
    assert policy.days_of_month == (1, 5, 10, 15, 20, 25)
    assert max(policy.retry_days) <= policy.grace_days


def test_a_full_policy_is_read():
    policy = load(
        {
            "tiers": [{"up_to": 10_000, "max_months": 3}, {"up_to": 90_000, "max_months": 12}],
            "minimum_monthly": 1_000,
            "down_payment_percent": 10,
            "days_of_month": [15, 1, 15],
            "grace_days": 14,
            "missed_before_default": 3,
            "allow_adding_statements": False,
            "reminder_days": 5,
            "retry_days": [7, 2],
            "staff_max_months": 36,
        }
    ).plans
    assert policy.tiers == (PlanTier(10_000, 3), PlanTier(90_000, 12))
    assert policy.days_of_month == (1, 15)
    assert policy.retry_days == (2, 7)
    assert not policy.allow_adding_statements


@pytest.mark.parametrize(
    ("plans", "setting"),
    [
        ({"weeks": 2}, "plans.weeks"),
        ({"tiers": []}, "plans.tiers"),
        ({"tiers": [{"up_to": 5, "max_months": 0}]}, "plans.tiers[0].max_months"),
        ({"tiers": [{"up_to": -1, "max_months": 3}]}, "plans.tiers[0].up_to"),
        ({"tiers": [{"max_months": 3}, {"up_to": 10, "max_months": 6}]}, "plans.tiers"),
        ({"tiers": [{"up_to": 10, "max_months": 3}, {"up_to": 5, "max_months": 6}]}, "plans.tiers"),
        ({"minimum_monthly": 0}, "plans.minimum_monthly"),
        ({"down_payment_percent": 10, "down_payment_amount": 500}, "plans.down_payment_amount"),
        ({"days_of_month": [31]}, "plans.days_of_month"),
        ({"retry_days": [20]}, "plans.retry_days"),
        ({"allow_adding_statements": "yes"}, "plans.allow_adding_statements"),
        ({"staff_max_months": 3}, "plans.staff_max_months"),
    ],
)
def test_a_bad_value_names_its_key(plans, setting):
    with pytest.raises(SettingsError) as error:
        load(plans)
    assert error.value.setting == setting
