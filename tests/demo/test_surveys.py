"""The sample brand's customers are surveyed after what they do, and answer as it went."""

from __future__ import annotations

import itertools
import re
from collections import Counter, defaultdict
from datetime import datetime, timedelta
from statistics import mean
from typing import Any

import pytest

from opencx.demo import SOURCES, generate_brand
from opencx.journeys import touchpoint_id

CHANNEL_OF = {s.name: s.channel for s in SOURCES}
TYPES = {
    "csat-purchase": "csat",
    "ces-contact": "ces",
    "ces-reset-app": "ces",
    "ces-reset-web": "ces",
    "nps-relationship": "nps",
}
DELIVERY = {
    "csat-purchase": {"email"},
    "ces-contact": {"sms", "email"},
    "ces-reset-app": {"app"},
    "ces-reset-web": {"web"},
    "nps-relationship": {"email"},
}
MEASURED = {
    "csat-purchase": {"order_completed@web", "order_completed@app", "order_completed@store"},
    "ces-contact": {"call_ended@phone", "chat_ended@chat", "store_visit@store"},
    "ces-reset-app": {"password_reset_started@app"},
    "ces-reset-web": {"password_reset_started@web"},
    "nps-relationship": {"relationship"},
}
SCALES = {"nps": range(11), "csat": range(1, 6), "ces": range(1, 8)}
Message = dict[str, Any]


@pytest.fixture(scope="module")
def brand() -> list[tuple[str, Message]]:
    # Big enough for the few hundred people whose app reset fails to answer an NPS.
    return list(generate_brand(1500, seed=11))


@pytest.fixture(scope="module")
def invited(brand: list[tuple[str, Message]]) -> dict[str, tuple[str, Message]]:
    """Invitations by invitation id, with their source."""
    out = {}
    for source, m in brand:
        if m.get("event") == "Survey Invited":
            assert m["properties"]["invitation_id"] not in out
            out[m["properties"]["invitation_id"]] = (source, m)
    return out


@pytest.fixture(scope="module")
def answers(brand: list[tuple[str, Message]]) -> list[tuple[str, Message]]:
    return [(s, m) for s, m in brand if m.get("event") == "Survey Responded"]


def _at(message: Message) -> datetime:
    return datetime.fromisoformat(message["timestamp"])


def _person(message: Message) -> str:
    return message["userId"]


def _failed_app_resets(brand: list[tuple[str, Message]]) -> dict[str, datetime]:
    """When each person's first password reset in the app failed."""
    first: dict[str, datetime] = {}
    for source, m in brand:
        if m.get("event") == "Password Reset Failed" and source == "ios-app":
            first.setdefault(_person(m), _at(m))
    return first


def test_invitations_name_the_survey_and_the_interaction_measured(
    brand: list[tuple[str, Message]], invited: dict[str, tuple[str, Message]]
) -> None:
    position = {m["messageId"]: (i, m) for i, (_, m) in enumerate(brand)}
    per_survey = Counter(m["properties"]["survey_id"] for _, m in invited.values())
    assert set(per_survey) == set(TYPES)
    for source, m in invited.values():
        p = m["properties"]
        survey = p["survey_id"]
        assert p["survey_type"] == TYPES[survey]
        assert re.fullmatch(r"inv-[0-9-]+", p["invitation_id"])
        assert p["touchpoint"] in MEASURED[survey]
        assert m["context"]["channel"] == CHANNEL_OF[source] in DELIVERY[survey]
        assert m["userId"]
        if survey == "nps-relationship":
            assert "trigger_message_id" not in p
            continue
        index, trigger = position[p["trigger_message_id"]]
        assert index < position[m["messageId"]][0] and _at(trigger) < _at(m)
        assert trigger.get("userId", m["userId"]) == m["userId"]
        channel = trigger["context"]["channel"]
        assert touchpoint_id(trigger["event"], channel) == p["touchpoint"]


def test_in_product_surveys_track_on_the_page_or_screen_of_the_reset(
    brand: list[tuple[str, Message]], invited: dict[str, tuple[str, Message]]
) -> None:
    by_id = {m["messageId"]: m for _, m in brand}
    for _, m in invited.values():
        if m["properties"]["survey_id"].startswith("ces-reset"):
            trigger = by_id[m["properties"]["trigger_message_id"]]
            assert m["anonymousId"] == trigger["anonymousId"]
            assert m["context"] == trigger["context"]
            assert m["context"] is not trigger["context"]
            assert _at(m) - _at(trigger) < timedelta(hours=1)


def test_each_invitation_has_at_most_one_answer_after_it_on_its_channel(
    invited: dict[str, tuple[str, Message]], answers: list[tuple[str, Message]]
) -> None:
    answered = Counter(m["properties"]["invitation_id"] for _, m in answers)
    assert answered and max(answered.values()) == 1
    for source, m in answers:
        p = m["properties"]
        invitation_source, invitation = invited[p["invitation_id"]]
        assert _at(invitation) < _at(m) < _at(invitation) + timedelta(days=6)
        assert _person(m) == _person(invitation)
        for key in ("survey_id", "survey_type", "touchpoint"):
            assert p[key] == invitation["properties"][key]
        assert p["channel"] == m["context"]["channel"] == CHANNEL_OF[source]
        assert source == invitation_source


def test_scores_are_whole_numbers_on_each_scale(answers: list[tuple[str, Message]]) -> None:
    seen: dict[str, set[int]] = defaultdict(set)
    for _, m in answers:
        p = m["properties"]
        assert type(p["score"]) is int and p["score"] in SCALES[p["survey_type"]]
        seen[p["survey_type"]].add(p["score"])
    assert {kind: len(scores) for kind, scores in seen.items()} == {"nps": 11, "csat": 5, "ces": 7}


def test_response_shares_are_as_designed(
    invited: dict[str, tuple[str, Message]], answers: list[tuple[str, Message]]
) -> None:
    sent = Counter(m["properties"]["survey_id"] for _, m in invited.values())
    got = Counter(m["properties"]["survey_id"] for _, m in answers)
    share = {survey: got[survey] / sent[survey] for survey in sent}
    assert 0.18 <= share["csat-purchase"] <= 0.32
    assert 0.16 <= share["ces-contact"] <= 0.24
    assert 0.24 <= share["ces-reset-app"] <= 0.36
    assert 0.24 <= share["ces-reset-web"] <= 0.36
    assert 0.14 <= share["nps-relationship"] <= 0.21
    # Most customers get each quarter's NPS; transactional surveys follow the interactions.
    customers = len({_person(m) for _, m in invited.values()})
    assert sent["nps-relationship"] > 1.2 * customers
    assert sent["ces-contact"] > sent["csat-purchase"] > 100


def test_no_one_is_invited_twice_within_a_week(
    brand: list[tuple[str, Message]], invited: dict[str, tuple[str, Message]]
) -> None:
    times: dict[str, list[datetime]] = defaultdict(list)
    for _, m in invited.values():
        times[_person(m)].append(_at(m))
    gaps = [b - a for ts in times.values() for a, b in itertools.pairwise(ts)]
    assert gaps and min(gaps) >= timedelta(days=7)
    # An online order goes unsurveyed only when its survey would come too soon after another.
    asked_about = {m["properties"].get("trigger_message_id") for _, m in invited.values()}
    user_of = {m["anonymousId"]: m["userId"] for _, m in brand if m["type"] == "identify"}
    end = _at(brand[-1][1]) - timedelta(hours=3)
    skipped = 0
    for source, m in brand:
        online = m.get("event") == "Order Completed" and source != "stores"
        if online and _at(m) < end and m["messageId"] not in asked_about:
            skipped += 1
            due = _at(m) + timedelta(hours=2.25)
            person = m.get("userId") or user_of[m["anonymousId"]]
            assert any(due - timedelta(days=7) < t < due for t in times[person])
    assert skipped > 10


def test_people_whose_app_reset_failed_are_more_often_detractors(
    brand: list[tuple[str, Message]], answers: list[tuple[str, Message]]
) -> None:
    failed = _failed_app_resets(brand)
    scores: dict[bool, list[int]] = {True: [], False: []}
    comments = []
    for _, m in answers:
        p = m["properties"]
        if p["survey_id"] == "nps-relationship":
            hurt = _person(m) in failed and failed[_person(m)] < _at(m)
            scores[hurt].append(p["score"])
            if hurt and p["score"] <= 6 and "comment" in p:
                comments.append(p["comment"])
    share = {hurt: sum(s <= 6 for s in v) / len(v) for hurt, v in scores.items()}
    assert len(scores[True]) >= 15
    assert share[True] > 1.5 * share[False]
    assert 0.18 <= share[False] <= 0.32  # ordinary customers: about a quarter
    promoters = sum(s >= 9 for s in scores[False]) / len(scores[False])
    assert 0.32 <= promoters <= 0.48
    about_it = re.compile(r"reset|password|\bcode\b|\bapp\b|sms|otp", re.IGNORECASE)
    assert sum(bool(about_it.search(c)) for c in comments) > 0.5 * len(comments) > 0


def test_ces_after_failed_app_resets_is_far_below_web_resets(
    brand: list[tuple[str, Message]],
    invited: dict[str, tuple[str, Message]],
    answers: list[tuple[str, Message]],
) -> None:
    # How each reset episode ended, by its last attempt's Password Reset Started.
    attempt: dict[str, str] = {}
    ended: dict[str, str] = {}
    for _, m in brand:
        if m.get("event") == "Password Reset Started":
            attempt[m["anonymousId"]] = m["messageId"]
        elif m.get("event") in ("Password Reset Completed", "Password Reset Failed"):
            ended[attempt[m["anonymousId"]]] = m["event"]
    scores: dict[str, list[int]] = defaultdict(list)
    for _, m in answers:
        survey = m["properties"]["survey_id"]
        if survey.startswith("ces-reset"):
            trigger = invited[m["properties"]["invitation_id"]][1]["properties"]
            failed = ended[trigger["trigger_message_id"]] == "Password Reset Failed"
            lane = "app failed" if survey == "ces-reset-app" and failed else survey
            scores[lane].append(m["properties"]["score"])
    assert len(scores["app failed"]) >= 15
    assert mean(scores["app failed"]) < mean(scores["ces-reset-web"]) - 2
    assert sum(s <= 3 for s in scores["app failed"]) / len(scores["app failed"]) > 0.7
    assert sum(s >= 5 for s in scores["ces-reset-web"]) / len(scores["ces-reset-web"]) > 0.7


def test_comments_are_varied_and_in_the_tone_of_the_score(
    answers: list[tuple[str, Message]],
) -> None:
    comments = [m["properties"] for _, m in answers if "comment" in m["properties"]]
    assert 0.35 <= len(comments) / len(answers) <= 0.6
    texts = [p["comment"] for p in comments]
    assert all(isinstance(t, str) and t for t in texts)
    assert len(set(texts)) > 0.95 * len(texts)
    band = {"nps": (6, 9), "csat": (2, 4), "ces": (3, 5)}  # negative up to, positive from
    angry = re.compile(r"unacceptable|ridiculous|terrible service|really frustrated", re.I)
    pleased = re.compile(r"keep it up|would recommend|five stars|made my day|happy customer", re.I)
    low = [p["comment"] for p in comments if p["score"] <= band[p["survey_type"]][0]]
    high = [p["comment"] for p in comments if p["score"] >= band[p["survey_type"]][1]]
    assert any(map(angry.search, low)) and not any(map(pleased.search, low))
    assert any(map(pleased.search, high)) and not any(map(angry.search, high))
    # A hard reset in the app is what its comments are about.
    reset = re.compile(r"reset|password|\bcodes?\b|sms|otp|\btexts?\b|log ?in|locked", re.I)
    hard = [p["comment"] for p in comments if p["survey_id"] == "ces-reset-app" and p["score"] <= 3]
    assert len(hard) >= 10 and all(map(reset.search, hard))


def test_customer_n_answers_the_same_whatever_the_brand_size() -> None:
    def surveys(customers: int) -> dict[str, list[Message]]:
        out: dict[str, list[Message]] = defaultdict(list)
        for _, m in generate_brand(customers, seed=4):
            if m.get("event", "").startswith("Survey"):
                p = {k: v for k, v in m["properties"].items() if k != "trigger_message_id"}
                out[m["userId"]].append({**m, "messageId": "", "properties": p})
        return out

    small, large = surveys(40), surveys(70)
    assert len(small) > 30
    assert all(large[user] == answered for user, answered in small.items())
    assert surveys(40) == small
