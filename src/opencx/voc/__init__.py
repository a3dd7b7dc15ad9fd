"""Voice of the customer: sentiment and themes of every verbatim (comment, chat, agent note)."""

from __future__ import annotations

from opencx.voc._analysers import ANALYSER_NAMES, analyser_by_name
from opencx.voc._embedding import EmbeddingAnalyser
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
from opencx.voc._themes import (
    Theme,
    ThemeId,
    ThemeTag,
    discover_themes,
    measure_themes,
    rank_negative_themes,
    tag_themes,
    theme_id,
)

__all__ = [
    "ANALYSER_NAMES",
    "LABELS",
    "EmbeddingAnalyser",
    "Evaluation",
    "LexiconAnalyser",
    "LexiconCalibration",
    "Sentiment",
    "SentimentAnalyser",
    "SentimentLabel",
    "Theme",
    "ThemeId",
    "ThemeTag",
    "analyser_by_name",
    "discover_themes",
    "evaluate",
    "fit_lexicon_calibration",
    "measure_themes",
    "rank_negative_themes",
    "tag_themes",
    "theme_id",
]
