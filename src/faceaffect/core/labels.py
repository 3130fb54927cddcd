"""Label sets and their orders.

The 8-class HSEmotion/AffectNet models emit logits in ``AFFECTNET_8`` order; the 7-class ones drop Contempt.

>>> AFFECTNET_8.index("Happiness")
4
"""

from __future__ import annotations

AFFECTNET_8: tuple[str, ...] = (
    "Anger",
    "Contempt",
    "Disgust",
    "Fear",
    "Happiness",
    "Neutral",
    "Sadness",
    "Surprise",
)
AFFECTNET_7: tuple[str, ...] = tuple(label for label in AFFECTNET_8 if label != "Contempt")

LABEL_SETS: dict[str, tuple[str, ...]] = {"affectnet8": AFFECTNET_8, "affectnet7": AFFECTNET_7}


def label_set(name: str) -> tuple[str, ...]:
    """Return the ordered labels of a named label set (``affectnet8`` or ``affectnet7``)."""
    try:
        return LABEL_SETS[name]
    except KeyError:
        raise ValueError(f"unknown label set {name!r}; known: {', '.join(LABEL_SETS)}") from None
