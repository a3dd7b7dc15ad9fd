"""Voice of the customer: sentiment and themes of every verbatim (survey comment, chat, note)."""

from __future__ import annotations

from opencx.voc._sentiment import (
    LABELS,
    Evaluation,
    LexiconAnalyser,
    LexiconCalibration,
    Sentiment,
    SentimentAnalyser,
    SentimentLabel,
    evaluate,
    fit_lexicon_calibration,
)

__all__ = [
    "LABELS",
    "Evaluation",
    "LexiconAnalyser",
    "LexiconCalibration",
    "Sentiment",
    "SentimentAnalyser",
    "SentimentLabel",
    "evaluate",
    "fit_lexicon_calibration",
]
