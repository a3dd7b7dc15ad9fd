"""Themes: discovered from verbatims, tagged with exact spans, edited by analysts, ranked."""

from __future__ import annotations

import doctest

import pytest

from opencx.demo._verbatims import sample_verbatims
from opencx.errors import InvalidInput
from opencx.voc import (
    LexiconAnalyser,
    Sentiment,
    Theme,
    _text,
    _themes,
    discover_themes,
    measure_themes,
    rank_negative_themes,
    tag_themes,
    theme_id,
)
from opencx.voc._text import phrase_words

_RESET_WORDS = {"password", "reset", "code", "sms"}


@pytest.fixture(scope="module")
def corpus() -> list[str]:
    # 3,000 comments; a tenth about the app's password reset, three quarters of those
    # negative (the planted problem), the rest every other topic in its usual mix.
    return [text for _, _, text in sample_verbatims(3000, seed=1, password_reset_share=0.1)]


@pytest.fixture(scope="module")
def sentiments(corpus: list[str]) -> list[Sentiment]:
    return LexiconAnalyser().analyse(corpus)


@pytest.fixture(scope="module")
def themes(corpus: list[str], sentiments: list[Sentiment]) -> list[Theme]:
    return discover_themes(corpus, seed=0, sentiments=sentiments)


def _is_reset(theme: Theme) -> bool:
    return bool(_RESET_WORDS & {w for phrase in theme.phrases[:3] for w in phrase.split()})


def test_the_password_reset_problem_is_a_top_negative_theme(
    themes: list[Theme], sentiments: list[Sentiment]
) -> None:
    overall = sum(1 for s in sentiments if s.label == "negative") / len(sentiments)
    for top in (
        rank_negative_themes(themes, top=3),
        rank_negative_themes(themes, top=3, baseline=overall),
    ):
        assert len(top) == 3
        assert any(_is_reset(t) for t in top), [t.name for t in top]
        reset = next(t for t in top if _is_reset(t))
        assert reset.negative_share > max(0.5, overall)
        assert reset.mean_sentiment < 0


def test_discovered_themes_are_named_measured_and_exemplified(
    corpus: list[str], themes: list[Theme]
) -> None:
    assert 4 <= len(themes) <= 12
    assert len({t.id for t in themes}) == len(themes)
    assert [t.size for t in themes] == sorted((t.size for t in themes), reverse=True)
    for theme in themes:
        assert theme.id.startswith("th_") and len(theme.id) == 11
        assert 1 <= len(theme.phrases) <= 10
        assert set(theme.name.split(" · ")) <= set(theme.phrases)
        assert 0 < theme.negative <= theme.size
        assert -1 <= theme.mean_sentiment <= 1
        assert 1 <= len(theme.examples) <= 3 and set(theme.examples) <= set(corpus)
    # A phrase belongs to one theme only.
    phrases = [p for t in themes for p in t.phrases]
    assert len(phrases) == len(set(phrases))


def test_tags_slice_to_their_phrases(corpus: list[str], themes: list[Theme]) -> None:
    by_id = {t.id: t for t in themes}
    all_tags = tag_themes(corpus, themes)
    assert len(all_tags) == len(corpus)
    assert sum(1 for tags in all_tags if tags) > len(corpus) / 2
    for text, tags in zip(corpus, all_tags, strict=True):
        starts = [tag.start for tag in tags]
        assert starts == sorted(starts)
        for tag in tags:
            assert text[tag.start : tag.end] == tag.phrase
            assert " ".join(phrase_words(tag.phrase)) == tag.key_phrase
            assert tag.key_phrase in by_id[tag.theme_id].phrases


def test_discovery_is_deterministic(corpus: list[str], sentiments: list[Sentiment]) -> None:
    first = discover_themes(corpus[:800], seed=3, sentiments=sentiments[:800])
    assert first == discover_themes(corpus[:800], seed=3, sentiments=sentiments[:800])


def test_discovery_with_a_given_k() -> None:
    texts = [text for _, _, text in sample_verbatims(600, seed=2)]
    assert 1 <= len(discover_themes(texts, k=5)) <= 5


def test_too_little_text_gives_no_themes() -> None:
    assert discover_themes([]) == []
    assert discover_themes(["Thanks!", "ok", "hi there"]) == []


def test_a_corpus_of_few_distinct_comments_gives_few_themes() -> None:
    texts = ["The bill is wrong", "No signal at home", "Store staff were great"] * 40
    themes = discover_themes(texts)
    assert 1 <= len(themes) <= 3
    assert sum(t.size for t in themes) == len(texts)


def test_discovery_checks_its_arguments() -> None:
    with pytest.raises(InvalidInput, match="k must be"):
        discover_themes(["a b"], k=0)
    with pytest.raises(InvalidInput, match="one per text"):
        discover_themes(["a b", "c d"], sentiments=[Sentiment(0.0, "neutral")])


def test_tagging_skips_stop_words_and_prefers_the_longest_phrase() -> None:
    app = Theme.from_phrases(["app"], name="App")
    update = Theme.from_phrases(["app update"], name="Update")
    [first, second] = tag_themes(
        ["Since the App's update... since the app  update", "the APP crashed"], [app, update]
    )
    assert [(t.theme_id, t.phrase) for t in first] == [
        (update.id, "App's update"),
        (update.id, "app  update"),
    ]
    assert [(t.theme_id, t.phrase, t.start, t.end) for t in second] == [(app.id, "APP", 4, 7)]


def test_an_edited_theme_keeps_its_id_and_tags_with_its_new_phrases() -> None:
    reset = Theme.from_phrases(["password reset", "sms code"])
    assert reset.name == "password reset · sms code"
    edited = reset.renamed("  Reset code never arrives ").with_phrases(
        ["One-time code", "OTP", "verification code", "OTP"]
    )
    assert edited.id == reset.id
    assert edited.name == "Reset code never arrives"
    assert edited.phrases == ("one-time code", "otp", "verification code")
    texts = ["The OTP never came", "password reset is broken", "my one-time code?"]
    assert [[t.phrase for t in tags] for tags in tag_themes(texts, [edited])] == [
        ["OTP"],
        [],
        ["one-time code"],
    ]
    assert [[t.phrase for t in tags] for tags in tag_themes(texts, [reset])] == [
        [],
        ["password reset"],
        [],
    ]


def test_theme_edits_are_checked() -> None:
    theme = Theme.from_phrases(["billing"])
    with pytest.raises(InvalidInput, match="non-empty"):
        theme.renamed(" ")
    with pytest.raises(InvalidInput, match="no content word"):
        theme.with_phrases(["the", "bill"])
    with pytest.raises(InvalidInput, match="not one string"):
        theme.with_phrases("billing")
    with pytest.raises(InvalidInput, match="at least one"):
        theme.with_phrases([])


def test_theme_ids_come_from_the_top_phrases() -> None:
    one = Theme.from_phrases(["sms code", "password reset", "app"])
    two = Theme.from_phrases(["password reset", "sms code"], name="Reset")
    assert one.id == two.id == theme_id(["password reset", "sms code"])
    assert one.id != Theme.from_phrases(["late fee"]).id


def test_measure_themes_refuses_two_themes_with_one_id() -> None:
    bill = Theme.from_phrases(["bill"])
    with pytest.raises(InvalidInput, match=bill.id):
        measure_themes(["my bill"], [bill, bill.renamed("Billing")])


def test_measure_themes_counts_mentions_sentiment_and_examples() -> None:
    texts = [
        "Late fee again on my bill",
        "Bill was fine",
        "the late fee is a joke and the bill is wrong",
        "Store was nice",
    ]
    sentiments = [
        Sentiment(-0.8, "negative"),
        Sentiment(0.4, "positive"),
        Sentiment(-0.6, "negative"),
        Sentiment(0.7, "positive"),
    ]
    bill = Theme.from_phrases(["late fee", "bill"])
    roaming = Theme.from_phrases(["roaming"])
    [measured_bill, measured_roaming] = measure_themes(
        texts, [bill, roaming], sentiments=sentiments
    )
    assert (measured_bill.size, measured_bill.negative) == (3, 2)
    assert measured_bill.negative_share == pytest.approx(2 / 3)
    assert measured_bill.mean_sentiment == pytest.approx(-1 / 3, abs=1e-4)
    # Those mentioning most of its phrases first, then the shortest.
    assert measured_bill.examples == (texts[0], texts[2], texts[1])
    assert (measured_roaming.size, measured_roaming.negative_share) == (0, 0.0)
    assert measured_roaming.examples == ()


def test_rank_negative_themes_by_negative_verbatims_or_their_excess() -> None:
    a = Theme("th_a", "a", ("a",), size=100, negative=36)
    b = Theme("th_b", "b", ("b",), size=40, negative=35)
    c = Theme("th_c", "c", ("c",), size=500, negative=0)
    d = Theme("th_d", "d", ("d",), size=60, negative=30)
    e = Theme("th_e", "e", ("e",), size=300, negative=90)
    assert rank_negative_themes([a, b, c, d, e], top=2) == [e, a]
    # Beyond a 30% baseline: b has 23 more than expected, d 12, a 6, e none.
    assert rank_negative_themes([a, b, c, d, e], baseline=0.3) == [b, d, a]
    assert rank_negative_themes([c]) == []
    with pytest.raises(InvalidInput, match="top"):
        rank_negative_themes([a], top=0)
    with pytest.raises(InvalidInput, match="baseline"):
        rank_negative_themes([a], baseline=1.5)


def test_docstring_examples() -> None:
    for module in (_themes, _text):
        assert doctest.testmod(module).failed == 0
