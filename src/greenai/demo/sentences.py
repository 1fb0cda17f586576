"""A deterministic corpus of short English sentences with a topic label each.

Sentences are built from clause templates and word lists written here (no download), so a
sentence-embedding benchmark has real text of varied length (about 5 to 55 words, at most
64 MiniLM tokens) and a small classification task for transfer learning. The same
`(n, seed)` always gives the same sentences; different seeds give disjoint-looking samples
for train/test or calibration splits.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

TOPICS: tuple[str, ...] = ("sport", "weather", "finance", "cooking")
MIN_WORDS = 5
MAX_WORDS = 55

# Per topic: who acts, what they do (verb + object phrases), and topic-specific detail.
_WORDS: dict[str, dict[str, tuple[str, ...]]] = {
    "sport": {
        "subject": (
            "the home team",
            "our captain",
            "the young striker",
            "the coach",
            "the defender",
            "the tennis player",
            "the runner",
            "the goalkeeper",
            "the visiting side",
            "the cyclist",
        ),
        "action": (
            "scored a late goal",
            "won the final match",
            "missed an easy penalty",
            "trained hard for the race",
            "lost the first set",
            "broke the club record",
            "signed a new contract",
            "defended the title",
            "kicked the ball wide",
            "finished the marathon",
        ),
        "detail": (
            "in front of a loud crowd",
            "after a long season",
            "during extra time",
            "at the national stadium",
            "despite a knee injury",
            "before the referee blew the whistle",
            "with two minutes left",
            "against the league leaders",
        ),
    },
    "weather": {
        "subject": (
            "the forecast",
            "a cold front",
            "the storm",
            "heavy rain",
            "the wind",
            "a thick fog",
            "the heat wave",
            "fresh snow",
            "the morning sun",
            "a strong breeze",
        ),
        "action": (
            "brought thunder to the valley",
            "covered the hills in white",
            "flooded several roads",
            "pushed temperatures above thirty degrees",
            "cleared by the afternoon",
            "delayed flights at the airport",
            "turned the sky grey",
            "kept people indoors",
            "melted the ice on the lake",
            "arrived earlier than expected",
        ),
        "detail": (
            "across the northern coast",
            "for most of the week",
            "according to the weather service",
            "with showers later tonight",
            "under a warning for high winds",
            "as clouds moved in from the sea",
            "while the humidity stayed high",
            "before a dry and sunny weekend",
        ),
    },
    "finance": {
        "subject": (
            "the central bank",
            "the stock market",
            "investors",
            "the company",
            "the bond fund",
            "a small bank",
            "the finance minister",
            "shareholders",
            "the trading desk",
            "the currency",
        ),
        "action": (
            "raised interest rates",
            "reported higher profits",
            "sold their shares",
            "cut its dividend",
            "borrowed money to expand",
            "fell sharply in value",
            "paid off its debt",
            "announced a new budget",
            "bought government bonds",
            "warned about inflation",
        ),
        "detail": (
            "after the quarterly results",
            "as prices kept rising",
            "despite weak consumer demand",
            "ahead of the annual meeting",
            "on a busy trading day",
            "to calm nervous markets",
            "while the economy slowed",
            "according to the latest report",
        ),
    },
    "cooking": {
        "subject": (
            "the chef",
            "my grandmother",
            "the baker",
            "the recipe",
            "the cook",
            "our neighbour",
            "the kitchen team",
            "a student",
            "the waiter",
            "my brother",
        ),
        "action": (
            "baked fresh bread",
            "stirred the tomato sauce",
            "chopped the onions",
            "roasted a chicken",
            "added salt and pepper",
            "fried the eggs in butter",
            "boiled the pasta",
            "mixed flour with sugar",
            "served a warm soup",
            "tasted the curry",
        ),
        "detail": (
            "in a hot oven",
            "for about twenty minutes",
            "with garlic and herbs",
            "before dinner was served",
            "on a low heat",
            "using a cast iron pan",
            "until the crust turned golden",
            "with a pinch of cinnamon",
        ),
    },
}

# Words shared by every topic, so the label is not given away by sentence shape alone.
_OPENERS: tuple[str, ...] = (
    "",
    "",
    "yesterday",
    "this morning",
    "on monday",
    "last night",
    "as usual",
    "once again",
    "surprisingly",
    "meanwhile",
)
_JOINERS: tuple[str, ...] = ("and", "while", "because", "so", "but", "although", "after")


@dataclass(frozen=True)
class LabeledSentence:
    text: str
    topic: str

    @property
    def label(self) -> int:
        """The topic as a class index into `TOPICS`."""
        return TOPICS.index(self.topic)


def _clause(rng: random.Random, topic: str, with_detail: bool) -> list[str]:
    words = _WORDS[topic]
    parts = [rng.choice(words["subject"]), rng.choice(words["action"])]
    if with_detail:
        parts.append(rng.choice(words["detail"]))
    return " ".join(parts).split()


def _sentence(rng: random.Random, topic: str, target_words: int) -> str:
    words: list[str] = []
    opener = rng.choice(_OPENERS)
    if opener and target_words > 8:
        words += opener.split()
    words += _clause(rng, topic, with_detail=target_words > 7)
    while len(words) < target_words - 4:
        words.append(rng.choice(_JOINERS))
        words += _clause(rng, topic, with_detail=rng.random() < 0.7)
    words = words[:MAX_WORDS]
    if len(words) < MIN_WORDS:  # cannot happen with the lists above; kept as a guard
        words += ["today"] * (MIN_WORDS - len(words))
    text = " ".join(words).rstrip(",")
    return text[0].upper() + text[1:] + "."


def make_sentences(n: int = 256, seed: int = 0) -> list[LabeledSentence]:
    """`n` sentences, topics balanced round-robin then shuffled, lengths uniform in words."""
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    rng = random.Random(seed)
    topics = [TOPICS[i % len(TOPICS)] for i in range(n)]
    rng.shuffle(topics)
    return [LabeledSentence(_sentence(rng, topic, rng.randint(MIN_WORDS, MAX_WORDS)), topic) for topic in topics]


def texts(sentences: list[LabeledSentence]) -> list[str]:
    return [s.text for s in sentences]


def labels(sentences: list[LabeledSentence]) -> list[int]:
    return [s.label for s in sentences]
