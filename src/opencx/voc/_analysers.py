"""The sentiment analysers by name, for settings, the CLI and the API to choose from."""

from __future__ import annotations

from opencx.errors import InvalidInput
from opencx.voc._embedding import EmbeddingAnalyser
from opencx.voc._sentiment import LexiconAnalyser, SentimentAnalyser

ANALYSER_NAMES: tuple[str, ...] = ("lexicon", "vader", "embedding")


def analyser_by_name(name: str) -> SentimentAnalyser:
    """A new analyser: "lexicon" (the default, calibrated VADER), "vader" (plain VADER, the
    baseline) or "embedding" (optional extra; must be fitted before use).

    >>> analyser_by_name("lexicon").name
    'lexicon'
    """
    if name == "lexicon":
        return LexiconAnalyser()
    if name == "vader":
        return LexiconAnalyser(calibration=None)
    if name == "embedding":
        return EmbeddingAnalyser()
    raise InvalidInput(f"analyser must be one of {', '.join(ANALYSER_NAMES)}; got {name!r}")
