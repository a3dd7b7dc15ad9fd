"""Themes: key phrases found in the verbatims, grouped by k-means, named, tagged and ranked."""

from __future__ import annotations

import dataclasses
import hashlib
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeAlias

import numpy as np

from opencx.errors import InvalidInput
from opencx.voc._sentiment import LexiconAnalyser, Sentiment, SentimentAnalyser, check_texts
from opencx.voc._text import content_words, phrase_words

if TYPE_CHECKING:
    from scipy import sparse

ThemeId: TypeAlias = str
"""`th_` and 8 hex digits derived from a theme's top phrases, e.g. `th_1f0c9a2b`."""

_MAX_WORDS = 3  # key phrases are 1- to 3-word n-grams of content words
_NAME_PHRASES = 2
_EXAMPLES = 3
_K_RANGE = (4, 12)  # k tried when none is given; fewer for small corpora
_SILHOUETTE_SAMPLE = 2000


@dataclass(frozen=True, slots=True)
class Theme:
    """A theme: its phrases (what tagging matches), and how the verbatims that mention it
    feel (`size` verbatims, `negative` of them negative, `mean_sentiment` from -1 to 1).

    Themes are values: `renamed` and `with_phrases` return an edited copy with the same
    id; `measure_themes` recounts the figures after an edit or on other verbatims.
    """

    id: ThemeId
    name: str
    phrases: tuple[str, ...]
    size: int = 0
    negative: int = 0
    mean_sentiment: float = 0.0
    examples: tuple[str, ...] = ()

    @classmethod
    def from_phrases(cls, phrases: Iterable[str], name: str | None = None) -> Theme:
        """A theme an analyst defines; named after its first two phrases unless `name`.

        >>> Theme.from_phrases(["password reset", "SMS code"]).name
        'password reset · sms code'
        """
        clean = _clean_phrases(phrases)
        top = _name_phrases(clean)
        return cls(id=theme_id(top), name=" · ".join(top) if name is None else name, phrases=clean)

    @property
    def negative_share(self) -> float:
        """The share of the theme's verbatims that are negative (0 for an empty theme)."""
        return self.negative / self.size if self.size else 0.0

    def renamed(self, name: str) -> Theme:
        """The same theme under another name (the id stays, so tags and links still hold)."""
        if not isinstance(name, str) or not name.strip():
            raise InvalidInput(f"theme name must be a non-empty string, got {name!r}")
        return dataclasses.replace(self, name=name.strip())

    def with_phrases(self, phrases: Iterable[str]) -> Theme:
        """The same theme matching `phrases` instead (matched on their content words, so
        "reset my password" matches "reset password"); the id stays."""
        return dataclasses.replace(self, phrases=_clean_phrases(phrases))


@dataclass(frozen=True, slots=True)
class ThemeTag:
    """A mention of a theme in a text: `text[start:end] == phrase`, which matched the
    theme's `key_phrase`."""

    theme_id: ThemeId
    phrase: str
    key_phrase: str
    start: int
    end: int


def theme_id(top_phrases: Sequence[str]) -> ThemeId:
    """The id of a theme with these top phrases: the same phrases give the same id in any
    run, so a theme found again next month keeps its id."""
    digest = hashlib.blake2b(" | ".join(sorted(top_phrases)).encode(), digest_size=4)
    return "th_" + digest.hexdigest()


def discover_themes(
    texts: Sequence[str],
    *,
    k: int | None = None,
    seed: int = 0,
    sentiments: Sequence[Sentiment] | None = None,
    analyser: SentimentAnalyser | None = None,
    max_phrases: int = 10,
) -> list[Theme]:
    """Themes found in `texts`, largest first, each measured on them (`measure_themes`).

    Key phrases are 1-3-word n-grams of content words (stop words removed), weighted by
    TF-IDF; k-means groups the verbatims (after LSA to 50 dimensions) into `k` groups,
    or into the k from 4 to 12 with the best silhouette when `k` is None (fewer for small
    corpora). A theme's phrases are those that best pick out its group's verbatims (most
    of the phrase's uses are in the group, and enough of the group uses it), each phrase
    in one theme only; it is named after its two best phrases that share no word.
    `sentiments` (one per text) saves analysing again; otherwise `analyser` (default
    `LexiconAnalyser()`) scores them. The same texts and seed give the same themes.
    """
    check_texts(texts)
    if k is not None and (isinstance(k, bool) or not isinstance(k, int) or k < 1):
        raise InvalidInput(f"k must be a whole number >= 1 or None, got {k!r}")
    if max_phrases < 1:
        raise InvalidInput(f"max_phrases must be >= 1, got {max_phrases!r}")
    if sentiments is not None and len(sentiments) != len(texts):
        raise InvalidInput(
            f"sentiments must be one per text; got {len(sentiments)} for {len(texts)} texts"
        )
    docs = [_ngrams([w for w, _, _ in content_words(t)]) for t in texts]
    themes = _cluster_themes(docs, k, seed, max_phrases)
    return sorted(
        measure_themes(texts, themes, sentiments=sentiments, analyser=analyser),
        key=lambda t: (-t.size, t.id),
    )


def tag_themes(texts: Sequence[str], themes: Sequence[Theme]) -> list[list[ThemeTag]]:
    """For each text, its theme mentions in reading order.

    Phrases match on content words in order, skipping stop words between them, case- and
    punctuation-blind; at each word the longest matching phrase wins.

    >>> reset = Theme.from_phrases(["reset password"])
    >>> [tag] = tag_themes(["I can't Reset my password!"], [reset])[0]
    >>> tag.phrase, tag.start, tag.end
    ('Reset my password', 8, 25)
    """
    check_texts(texts)
    index = _PhraseIndex(themes)
    return [index.tags(text) for text in texts]


def measure_themes(
    texts: Sequence[str],
    themes: Sequence[Theme],
    *,
    sentiments: Sequence[Sentiment] | None = None,
    analyser: SentimentAnalyser | None = None,
) -> list[Theme]:
    """`themes` recounted on `texts`: how many verbatims mention each, how many of those
    are negative, their mean sentiment and a few examples (those mentioning the most of
    its phrases, shortest first). Order is kept."""
    check_texts(texts)
    ids = [t.id for t in themes]
    if len(set(ids)) != len(ids):
        twice = sorted({i for i in ids if ids.count(i) > 1})
        raise InvalidInput(f"themes must have distinct ids; {', '.join(twice)} appear twice")
    if sentiments is None:
        sentiments = (analyser or LexiconAnalyser()).analyse(texts)
    elif len(sentiments) != len(texts):
        raise InvalidInput(
            f"sentiments must be one per text; got {len(sentiments)} for {len(texts)} texts"
        )
    members: dict[ThemeId, dict[int, set[str]]] = {t.id: {} for t in themes}
    for i, tags in enumerate(tag_themes(texts, themes)):
        for tag in tags:
            members[tag.theme_id].setdefault(i, set()).add(tag.key_phrase)
    measured = []
    for theme in themes:
        hits = members[theme.id]
        scores = [sentiments[i].score for i in hits]
        ranked = sorted(hits, key=lambda i: (-len(hits[i]), len(texts[i]), i))
        measured.append(
            dataclasses.replace(
                theme,
                size=len(hits),
                negative=sum(1 for i in hits if sentiments[i].label == "negative"),
                mean_sentiment=round(sum(scores) / len(scores), 4) if scores else 0.0,
                examples=tuple(texts[i] for i in ranked[:_EXAMPLES]),
            )
        )
    return measured


def rank_negative_themes(
    themes: Sequence[Theme], *, top: int = 3, baseline: float = 0.0
) -> list[Theme]:
    """The `top` themes with the most negative verbatims beyond `baseline`, the negative
    share of all verbatims: size x (negative share - baseline).

    With the default 0 that is each theme's count of negative verbatims (where the most
    unhappy customers are); with the overall share it is how many more negatives a theme
    has than an average one of its size would (what is unusually wrong), which big
    everyday themes do not win by size alone. Themes with no such excess are left out.

    >>> calm = Theme("th_calm", "calm", ("plan",), size=400, negative=120)
    >>> hot = Theme("th_hot", "hot", ("code",), size=100, negative=80)
    >>> [t.id for t in rank_negative_themes([calm, hot])]
    ['th_calm', 'th_hot']
    >>> [t.id for t in rank_negative_themes([calm, hot], baseline=0.35)]
    ['th_hot']
    """
    if top < 1:
        raise InvalidInput(f"top must be >= 1, got {top!r}")
    if not 0 <= baseline < 1:
        raise InvalidInput(f"baseline must be a share from 0 to 1, got {baseline!r}")

    def excess(theme: Theme) -> float:
        return theme.negative - baseline * theme.size

    ranked = sorted((t for t in themes if excess(t) > 0), key=lambda t: (-excess(t), t.id))
    return ranked[:top]


class _PhraseIndex:
    """Theme phrases by their first word, longest first, for one pass over each text."""

    def __init__(self, themes: Sequence[Theme]) -> None:
        by_words: dict[tuple[str, ...], list[tuple[ThemeId, str]]] = {}
        for theme in themes:
            for phrase in theme.phrases:
                key = phrase_words(phrase)
                if key:
                    by_words.setdefault(key, []).append((theme.id, " ".join(key)))
        self.first: dict[str, list[tuple[tuple[str, ...], list[tuple[ThemeId, str]]]]] = {}
        for key, owners in sorted(by_words.items(), key=lambda kv: -len(kv[0])):
            self.first.setdefault(key[0], []).append((key, owners))

    def tags(self, text: str) -> list[ThemeTag]:
        found = content_words(text)
        names = [w for w, _, _ in found]
        tags: list[ThemeTag] = []
        i = 0
        while i < len(found):
            step = 1
            for key, owners in self.first.get(names[i], ()):
                n = len(key)
                if tuple(names[i : i + n]) == key:
                    start, end = found[i][1], found[i + n - 1][2]
                    for owner, key_phrase in owners:
                        tags.append(ThemeTag(owner, text[start:end], key_phrase, start, end))
                    step = n
                    break
            i += step
        return tags


def _cluster_themes(
    docs: list[list[str]], k: int | None, seed: int, max_phrases: int
) -> list[Theme]:
    from sklearn.cluster import KMeans
    from sklearn.decomposition import TruncatedSVD
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.preprocessing import normalize
    from threadpoolctl import threadpool_limits

    filled = [i for i, d in enumerate(docs) if d]
    if len(filled) < 2:
        return []
    # Phrases used by fewer than 0.3% of verbatims (at least 2) are noise, not themes.
    min_df = max(2, math.ceil(0.003 * len(filled)))
    vectorizer = TfidfVectorizer(analyzer=_identity, min_df=min_df, max_df=0.5, sublinear_tf=True)
    try:
        tfidf = vectorizer.fit_transform([docs[i] for i in filled])
    except ValueError:  # no phrase is frequent enough
        return []
    phrases = vectorizer.get_feature_names_out()
    present = tfidf.getnnz(axis=1) > 0
    tfidf = tfidf[present]
    if tfidf.shape[0] < 2:
        return []
    # One thread: on matrices this small, BLAS and OpenMP threads cost more than they
    # give, and on a busy machine their spin-waiting made discovery 15 times slower.
    with threadpool_limits(limits=1):
        dims = min(50, tfidf.shape[1] - 1, tfidf.shape[0] - 1)
        if dims >= 2:
            vectors = normalize(TruncatedSVD(dims, random_state=seed).fit_transform(tfidf))
        else:
            vectors = tfidf.toarray()
        # k-means cannot make more groups than there are distinct verbatims.
        distinct = len(np.unique(vectors.round(6), axis=0))
        k = min(_choose_k(vectors, seed, distinct) if k is None else k, distinct)
        groups = KMeans(k, n_init=4, random_state=seed).fit_predict(vectors)
    return _name_groups(tfidf, groups, k, phrases, max_phrases)


def _choose_k(vectors: np.ndarray, seed: int, distinct: int) -> int:
    from sklearn.cluster import KMeans
    from sklearn.metrics import silhouette_score

    low, high = _K_RANGE
    # At least ~30 verbatims a theme on average, and no more groups than distinct points.
    high = min(high, vectors.shape[0] // 30, distinct)
    if high < low:
        return max(1, min(low, vectors.shape[0] // 10))
    rng = np.random.default_rng(seed)
    sample = rng.choice(vectors.shape[0], min(_SILHOUETTE_SAMPLE, vectors.shape[0]), replace=False)
    best_k, best = low, -1.0
    for k in range(low, high + 1):
        groups = KMeans(k, n_init=2, random_state=seed).fit_predict(vectors)
        if len(set(groups[sample].tolist())) < 2:
            continue
        score = silhouette_score(vectors[sample], groups[sample], metric="cosine")
        if score > best:
            best_k, best = k, score
    return best_k


def _name_groups(
    tfidf: sparse.csr_matrix, groups: np.ndarray, k: int, phrases: np.ndarray, max_phrases: int
) -> list[Theme]:
    # How well each phrase alone would pick out each group's verbatims: the F1 of "mentions
    # the phrase" against "is in the group". A phrase must be common in the group (recall)
    # and rare outside it (precision): "app", said about every topic, marks no group.
    present = (tfidf > 0).astype(np.float64)
    total = np.asarray(present.sum(axis=0)).ravel()
    recall = np.zeros((k, len(phrases)))
    precision = np.zeros((k, len(phrases)))
    for g in range(k):
        inside = groups == g
        count_in = np.asarray(present[inside].sum(axis=0)).ravel()
        recall[g] = count_in / max(1, inside.sum())
        precision[g] = count_in / np.maximum(total, 1)
    f1 = 2 * recall * precision / np.maximum(recall + precision, 1e-12)
    owner = f1.argmax(axis=0)  # each phrase belongs to the group it picks out best
    themes: dict[ThemeId, Theme] = {}
    for g in range(k):
        # Tagging counts every verbatim that uses a phrase, so most of them must be in the
        # group; and a phrase only a few of the group use says little about it.
        mine = np.flatnonzero((owner == g) & (precision[g] >= 0.6) & (recall[g] >= 0.05))
        if not len(mine):
            continue  # a group of odds and ends with no phrase of its own
        ranked = [str(phrases[j]) for j in mine[np.argsort(-f1[g, mine], kind="stable")]]
        top = ranked[:max_phrases]
        theme = Theme.from_phrases(top)
        if theme.id in themes:  # two groups with the same top phrases are one theme
            merged = themes[theme.id].phrases + tuple(
                p for p in top if p not in themes[theme.id].phrases
            )
            theme = themes[theme.id].with_phrases(merged)
        themes[theme.id] = theme
    return list(themes.values())


def _name_phrases(phrases: Sequence[str]) -> list[str]:
    """The first two phrases that share no word, longer phrases preferred: 'password reset'
    and 'sms code' rather than 'password' and 'password reset'."""
    chosen: list[str] = []
    used: set[str] = set()
    for phrase in sorted(phrases, key=lambda p: (-min(len(p.split()), 2), phrases.index(p))):
        parts = set(phrase.split())
        if parts & used:
            continue
        chosen.append(phrase)
        used |= parts
        if len(chosen) == _NAME_PHRASES:
            break
    return chosen


def _clean_phrases(phrases: Iterable[str]) -> tuple[str, ...]:
    if isinstance(phrases, str):
        raise InvalidInput("phrases must be a list of phrases, not one string")
    clean: list[str] = []
    for phrase in phrases:
        if not isinstance(phrase, str):
            raise InvalidInput(f"each phrase must be a string, got {phrase!r}")
        matched = " ".join(phrase_words(phrase))
        if not matched:
            raise InvalidInput(
                f"phrase {phrase!r} has no content word to match (only stop words or numbers)"
            )
        if matched not in clean:
            clean.append(matched)
    if not clean:
        raise InvalidInput("a theme needs at least one phrase")
    return tuple(clean)


def _ngrams(words: list[str]) -> list[str]:
    return [
        " ".join(words[i : i + n])
        for n in range(1, _MAX_WORDS + 1)
        for i in range(len(words) - n + 1)
    ]


def _identity(doc: list[str]) -> list[str]:
    return doc
