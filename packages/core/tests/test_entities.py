"""Validating user, company and subscription profiles: clear errors in the caller, accepted shapes normalised."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from moesif_core.entities import validate_batch, validate_company, validate_subscription, validate_user


class LegacyModel:
    """Shaped like moesifapi's UserModel: attributes plus to_dictionary()."""

    def __init__(self, **fields: Any) -> None:
        self.fields = fields

    def to_dictionary(self) -> dict[str, Any]:
        return {"user_id": None, "company_id": None, "metadata": None, **self.fields}


def test_a_user_needs_a_user_id() -> None:
    with pytest.raises(ValueError, match=r"a user needs a non-empty 'user_id': got keys \['metadata'\]"):
        validate_user({"metadata": {}})
    with pytest.raises(ValueError, match="non-empty 'user_id'"):
        validate_user({"user_id": "  "})
    with pytest.raises(ValueError, match="non-empty 'company_id'"):
        validate_company({"company_domain": "acme.com"})
    with pytest.raises(ValueError, match="non-empty 'subscription_id'"):
        validate_subscription({"company_id": "c1"})
    with pytest.raises(ValueError, match="non-empty 'company_id' too"):
        validate_subscription({"subscription_id": "s1", "status": "active"})


def test_wrong_shapes_are_named() -> None:
    with pytest.raises(TypeError, match="a user must be a dict with at least 'user_id', got int"):
        validate_user(42)
    with pytest.raises(TypeError, match="'user_id' must be a string"):
        validate_user({"user_id": ["u1"]})
    with pytest.raises(TypeError, match="user 'metadata' must be a dict, got str"):
        validate_user({"user_id": "u1", "metadata": "plan=pro"})
    with pytest.raises(ValueError, match=r"unknown company field\(s\) \['name'\]"):
        validate_company({"company_id": "c1", "name": "Acme"})
    with pytest.raises(ValueError, match=r"unknown user campaign field\(s\) \['utm_whatever'\]"):
        validate_user({"user_id": "u1", "campaign": {"utm_whatever": "x"}})
    with pytest.raises(ValueError, match="not JSON"):
        validate_user("{user_id: u1}")
    with pytest.raises(TypeError, match="must be an object"):
        validate_user('["u1"]')


def test_accepted_shapes_are_normalised() -> None:
    when = datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)
    user = validate_user({"user_id": 7, "modified_time": when, "campaign": {"utm_source": "ads", "gclid": None}})
    assert user == {"user_id": "7", "modified_time": "2026-01-02T03:04:05+00:00", "campaign": {"utm_source": "ads"}}
    assert validate_user('{"user_id": "u1", "company_id": "c1"}') == {"user_id": "u1", "company_id": "c1"}
    assert validate_user(LegacyModel(user_id="u2", metadata={"a": 1})) == {"user_id": "u2", "metadata": {"a": 1}}
    original = {"user_id": "u3"}
    validate_user(original)["user_id"] = "changed"
    assert original == {"user_id": "u3"}  # the caller's dict is never modified


def test_batch_errors_name_the_position_and_one_profile_is_not_a_batch() -> None:
    with pytest.raises(ValueError, match=r"users\[1\]: a user needs a non-empty 'user_id'"):
        validate_batch("users", [{"user_id": "u1"}, {"company_id": "c1"}])
    with pytest.raises(TypeError, match="for one user, use update_user"):
        validate_batch("users", {"user_id": "u1"})
    with pytest.raises(TypeError, match="for one company, use update_company"):
        validate_batch("companies", "c1")
    assert validate_batch("companies", ({"company_id": c} for c in ("a", "b"))) == [{"company_id": "a"}, {"company_id": "b"}]
