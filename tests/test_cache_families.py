"""Which cache deletes cover which cached entries (SL201's key families)."""

from __future__ import annotations

from scalelint.checks.caching import KeyFamily
from scalelint.request_path_types import FuncRef

USER_KEY = FuncRef("app.keys", "user_key")
TOKEN_KEY = FuncRef("app.keys", "token_key")
PLANS = FuncRef("app.api", "list_plans")
REGIONS = FuncRef("app.api", "region_names")


def test_heads_cover_each_other_by_prefix() -> None:
    contacts = KeyFamily("contacts:")
    assert contacts.may_be(KeyFamily("contacts:"))  # `contacts:{tenant}:*`
    assert contacts.may_be(KeyFamily("contacts:42:"))
    assert KeyFamily("contacts:42:").may_be(KeyFamily("contacts:"))
    assert not contacts.may_be(KeyFamily("team:"))


def test_an_unknown_key_may_be_any_key() -> None:
    assert KeyFamily("contacts:").may_be(None)
    assert KeyFamily(builder=USER_KEY).may_be(None)
    assert KeyFamily(memoized=PLANS).may_be(None)


def test_unreadable_builders_match_themselves_and_get_the_doubt_against_literals() -> None:
    assert KeyFamily(builder=USER_KEY).may_be(KeyFamily(builder=USER_KEY))
    assert not KeyFamily(builder=USER_KEY).may_be(KeyFamily(builder=TOKEN_KEY))
    assert KeyFamily(builder=USER_KEY).may_be(KeyFamily("user:"))
    assert KeyFamily("user:").may_be(KeyFamily(builder=TOKEN_KEY))


def test_memoized_results_are_deleted_by_their_function_or_namespace() -> None:
    plans = KeyFamily("plans", memoized=PLANS)
    assert plans.may_be(KeyFamily(memoized=PLANS))  # delete_memoized(list_plans)
    assert not plans.may_be(KeyFamily(memoized=REGIONS))  # delete_memoized(region_names)
    assert plans.may_be(KeyFamily("plans"))  # FastAPICache.clear(namespace="plans")
    assert not plans.may_be(KeyFamily("coupons"))
    # No namespace: a literal key may be one the decorator built (`view//plans`).
    assert KeyFamily(memoized=PLANS).may_be(KeyFamily("view/"))
    # A literal key family is not deleted by delete_memoized.
    assert not KeyFamily("plans:").may_be(KeyFamily(memoized=PLANS))


def test_messages_name_the_family() -> None:
    assert str(KeyFamily("contacts:")) == "`contacts:...`"
    assert str(KeyFamily(builder=USER_KEY)) == "`user_key(...)`"
    assert str(KeyFamily("plans", memoized=PLANS)) == "of `list_plans(...)` in namespace `plans`"
