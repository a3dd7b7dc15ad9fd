"""The sample brand's verbatims are varied, on topic, and plant the password-reset problem."""

from __future__ import annotations

import doctest
import random
import re
from collections import Counter

import pytest

from opencx.demo import _verbatims
from opencx.demo._verbatims import TONES, TOPICS, sample_verbatims, verbatim
from opencx.errors import InvalidInput


def test_topics_and_tones() -> None:
    assert {
        "password_reset_app",
        "billing",
        "network_coverage",
        "store_visit",
        "delivery",
        "plan_change",
        "agent_helpful",
        "app_general",
        "price",
    } <= set(TOPICS)
    assert TONES == ("positive", "neutral", "negative")


@pytest.mark.parametrize("topic", TOPICS)
def test_each_topic_reads_many_ways(topic: str) -> None:
    rng = random.Random(topic)
    texts = [verbatim(rng, topic, rng.choice(TONES)) for _ in range(2000)]
    assert len(set(texts)) >= 1000
    lengths = sorted(len(t.split()) for t in texts)
    assert lengths[0] <= 10 and lengths[-1] >= 30
    # Typed the way people type: some all lower case, some without a final stop.
    assert sum(1 for t in texts if t == t.lower()) > 50
    assert sum(1 for t in texts if t[-1].isalnum()) > 100


def test_negative_password_resets_talk_about_the_reset_the_code_and_the_app() -> None:
    rng = random.Random(5)
    texts = [verbatim(rng, "password_reset_app", "negative") for _ in range(1000)]
    vocabulary = re.compile(
        r"reset|password|\bcodes?\b|\bsms\b|\botp\b|\btexts?\b|log ?in|sign in|locked"
        r"|verification",
        re.IGNORECASE,
    )
    assert all(vocabulary.search(t) for t in texts)
    said = Counter(m.lower() for t in texts for m in set(vocabulary.findall(t)))
    assert len(said) >= 8, said  # in varied words, not one stock phrase
    assert sum(1 for t in texts if re.search(r"\bapp\b", t, re.IGNORECASE)) > 800
    assert sum(1 for t in texts if "5.2" in t) > 50
    called = re.compile(r"\bcall|phone|rang|helpline|on hold", re.IGNORECASE)
    assert sum(1 for t in texts if called.search(t)) > 150


def test_comments_name_the_brand_channels() -> None:
    text = " ".join(t for _, _, t in sample_verbatims(3000, seed=4)).lower()
    for channel in ("app", "website", "email", "text", "chat", "phone", "store"):
        assert re.search(rf"\b{channel}\b", text), channel


def test_same_random_state_same_comment() -> None:
    assert verbatim(random.Random(9), "billing", "negative") == verbatim(
        random.Random(9), "billing", "negative"
    )


def test_unknown_topic_or_tone_names_the_accepted_ones() -> None:
    with pytest.raises(InvalidInput, match="password_reset_app") as error:
        verbatim(random.Random(0), "roaming", "negative")
    assert "'roaming'" in error.value.message
    with pytest.raises(InvalidInput, match="positive, neutral, negative"):
        verbatim(random.Random(0), "billing", "angry")


def test_sample_verbatims_mixes_topics_and_plants_the_problem() -> None:
    corpus = sample_verbatims(5000, seed=2, password_reset_share=0.1)
    assert corpus == sample_verbatims(5000, seed=2, password_reset_share=0.1)
    topics = Counter(topic for topic, _, _ in corpus)
    assert set(topics) == set(TOPICS)
    assert topics["password_reset_app"] / len(corpus) == pytest.approx(0.1, abs=0.015)
    reset_tones = Counter(tone for topic, tone, _ in corpus if topic == "password_reset_app")
    assert reset_tones.most_common(1)[0][0] == "negative"
    assert {tone for _, tone, _ in corpus} == set(TONES)
    assert sample_verbatims(0) == []
    with pytest.raises(InvalidInput, match="password_reset_share"):
        sample_verbatims(10, password_reset_share=1.5)


def test_docstring_examples() -> None:
    assert doctest.testmod(_verbatims).failed == 0
