"""The identity graph's merge rules, one case at a time."""

from __future__ import annotations

from opencx.config import IdentitySettings
from opencx.identity import IdentityGraph


def graph(**limits: int) -> IdentityGraph:
    return IdentityGraph(IdentitySettings(limits={"user_id": 1, **limits}))


def test_identifiers_seen_together_share_a_profile() -> None:
    g = graph()
    first = g.resolve(["anonymous_id:a1"], "m1", 1)
    second = g.resolve(["user_id:u1", "anonymous_id:a1"], "m2", 2)
    assert first == second
    assert sorted(g.identifiers(first)) == ["anonymous_id:a1", "user_id:u1"]


def test_merge_keeps_the_older_profile_and_records_evidence() -> None:
    g = graph()
    older = g.resolve(["anonymous_id:a1"], "m1", 1)
    newer = g.resolve(["user_id:u1"], "m2", 2)
    merged = g.resolve(["user_id:u1", "anonymous_id:a1"], "m3", 3)
    assert merged == older != newer
    assert g.canonical(newer) == older
    changes = g.commit()
    [merge] = changes.merges
    assert (merge.profile_id, merge.merged_into, merge.message_id) == (newer, older, "m3")
    assert merge.identifier == "user_id:u1"


def test_second_user_id_is_refused_and_lowest_priority_identifier_dropped() -> None:
    g = graph()
    jane = g.resolve(["user_id:jane", "anonymous_id:shared-laptop"], "m1", 1)
    # Bob signs in on the same browser: linking would give one profile two user ids.
    bob = g.resolve(["user_id:bob", "anonymous_id:shared-laptop"], "m2", 2)
    assert bob != jane
    assert g.identifiers(bob) == ["user_id:bob"]
    [conflict] = g.commit().conflicts
    assert conflict.identifier == "anonymous_id:shared-laptop"
    assert "user_id" in conflict.reason


def test_limit_per_kind_is_respected() -> None:
    g = graph(email=2)
    pid = g.resolve(["user_id:u", "email:a@x.io"], "m1", 1)
    assert g.resolve(["user_id:u", "email:b@x.io"], "m2", 2) == pid
    assert g.resolve(["user_id:u", "email:c@x.io"], "m3", 3) == pid
    emails = [k for k in g.identifiers(pid) if k.startswith("email:")]
    assert emails == ["email:a@x.io", "email:b@x.io"]
    assert g.profile_of("email:c@x.io") is None


def test_rollback_forgets_everything_since_commit() -> None:
    g = graph()
    g.resolve(["anonymous_id:a1"], "m1", 1)
    g.commit()
    before = g.profiles()
    g.resolve(["user_id:u1", "anonymous_id:a1"], "m2", 2)
    g.resolve(["user_id:u2"], "m3", 3)
    g.rollback()
    assert g.profiles() == before
    assert not g.changes


def test_block_prevents_a_merge_even_through_a_third_identifier() -> None:
    g = IdentityGraph(IdentitySettings(), blocks=[("anonymous_id:a1", "user_id:u1", None)])
    a = g.resolve(["anonymous_id:a1", "email:x@y.io"], "m1", 1)
    u = g.resolve(["user_id:u1"], "m2", 2)
    # The email would bridge the two profiles: refused, the email stays where it was.
    bridged = g.resolve(["user_id:u1", "email:x@y.io"], "m3", 3)
    assert bridged == u != a
    assert g.profile_of("email:x@y.io") == a


def test_profile_ids_are_deterministic() -> None:
    one, two = graph(), graph()
    for g in (one, two):
        g.resolve(["anonymous_id:a"], "m1", 1)
        g.resolve(["user_id:u", "anonymous_id:a"], "m2", 2)
    assert one.profiles() == two.profiles()


def test_load_restores_what_was_resolved() -> None:
    g = graph()
    g.resolve(["anonymous_id:a"], "m1", 1)
    g.resolve(["user_id:u"], "m2", 2)
    g.resolve(["user_id:u", "anonymous_id:a"], "m3", 3)
    changes = g.commit()
    restored = graph()
    restored.load(
        [(r.key, r.profile_id, r.seq) for r in changes.identities],
        [(m.profile_id, m.merged_into) for m in changes.merges],
    )
    assert restored.profiles() == g.profiles()
    assert restored.resolve(["user_id:u", "email:e@x.io"], "m4", 4) == g.resolve(
        ["user_id:u", "email:e@x.io"], "m4", 4
    )
