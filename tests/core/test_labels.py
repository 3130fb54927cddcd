"""The label sets: the published models' logit order."""

from __future__ import annotations

import pytest

from faceaffect.core.labels import AFFECTNET_7, AFFECTNET_8, label_set


def test_label_orders() -> None:
    assert ", ".join(AFFECTNET_8) == "Anger, Contempt, Disgust, Fear, Happiness, Neutral, Sadness, Surprise"
    assert tuple(label for label in AFFECTNET_8 if label != "Contempt") == AFFECTNET_7
    assert label_set("affectnet8") is AFFECTNET_8 and label_set("affectnet7") is AFFECTNET_7
    with pytest.raises(ValueError, match="unknown label set 'fer'; known: affectnet8, affectnet7"):
        label_set("fer")
