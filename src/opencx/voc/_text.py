"""Words and stop words: the one tokenizer that theme discovery and tagging share."""

from __future__ import annotations

import functools
import re

# Letters and digits, keeping "can't", "one-time" and "5.2.0" whole; matched on the original
# text (not a lower-cased copy) so that spans index the text the analyst sees.
_WORD = re.compile(r"[^\W_]+(?:['’.-][^\W_]+)*")

# Chat filler and contractions, with and without the apostrophe people often skip: they
# say nothing about what a comment is about.
_CHAT_FILLER = """
    i'm i've i'd i'll im ive can't cant don't dont didn't didnt doesn't doesnt won't wont
    isn't isnt wasn't wasnt haven't havent hasn't hasnt couldn't couldnt wouldn't wouldnt
    shouldn't shouldnt aren't arent it's that's there's what's let's you're they're we're
    u ur pls plz please hi hello hey thanks thank thx ok okay just really got get getting did
    does like also know let want way lol cheers yes honestly seriously actually guys
"""

# scikit-learn's list has nouns that customers' comments are about ("bill", "call").
_KEPT = "bill call amount system interest detail fire empty full top name move"


@functools.cache
def stop_words() -> frozenset[str]:
    """scikit-learn's English stop words (less a few CX nouns) and chat filler; loaded on
    first use, as importing scikit-learn takes most of a second and sentiment needs none."""
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    return (ENGLISH_STOP_WORDS - frozenset(_KEPT.split())) | frozenset(_CHAT_FILLER.split())


def words(text: str) -> list[tuple[str, int, int]]:
    """Every word of `text`, lower-cased, with its character span.

    >>> words("Can't log in")
    [("can't", 0, 5), ('log', 6, 9), ('in', 10, 12)]
    """
    return [(_normal(m.group()), m.start(), m.end()) for m in _WORD.finditer(text)]


def content_words(text: str) -> list[tuple[str, int, int]]:
    """The words of `text` that can make a key phrase: no stop words, single letters or
    bare numbers (a version such as 5.2.0 stays).

    >>> [w for w, _, _ in content_words("The SMS code never arrives since 5.2.0, 3 times")]
    ['sms', 'code', 'arrives', '5.2.0', 'times']
    """
    stop = stop_words()
    return [w for w in words(text) if len(w[0]) > 1 and not w[0].isdigit() and w[0] not in stop]


def phrase_words(phrase: str) -> tuple[str, ...]:
    """A phrase the way it is matched: its content words in order.

    >>> phrase_words("Reset my Password")
    ('reset', 'password')
    """
    return tuple(w for w, _, _ in content_words(phrase))


def _normal(word: str) -> str:
    word = word.lower().replace("’", "'")
    # A possessive is its noun: "the app's reset screen" mentions the app.
    return word[:-2] if word.endswith("'s") else word
