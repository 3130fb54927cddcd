"""What went wrong while decoding a video, kept to tell the user: damaged packets skipped, the frames they
took with them, and a video that ends before the frames its container declares (truncated or cut short).

>>> report = DecodeReport(declared=100)
>>> report.damaged(40); report.damaged(40); report.missing(40, 6, 1.6, 1.84); report.ended(94)
>>> report.messages("clip.mp4")  # doctest: +NORMALIZE_WHITESPACE
['clip.mp4: 2 damaged packets skipped; frames 40-45 (1.60-1.84 s) could not be decoded',
 'clip.mp4: 94 of the 100 frames its container declares were read (truncated or damaged file)']
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class FrameGap:
    """Source frames ``first`` .. ``first + count - 1`` that could not be decoded, between the good frames at
    ``start`` and ``end`` seconds."""

    first: int
    count: int
    start: float
    end: float

    @property
    def last(self) -> int:
        return self.first + self.count - 1

    def describe(self) -> str:
        frames = f"frame {self.first}" if self.count == 1 else f"frames {self.first}-{self.last}"
        return frames if math.isnan(self.start) else f"{frames} ({self.start:.2f}-{self.end:.2f} s)"


@dataclass
class DecodeReport:
    """Faults met while decoding: damaged packets skipped (``skipped``: the source frame each came before),
    ``gaps`` of frames lost to them, ``declared`` frames the container announces (None when it does not
    say), ``read`` frames the video turned out to hold (None until it has been read to the end)."""

    declared: int | None = None
    skipped: list[int] = field(default_factory=list)
    gaps: list[FrameGap] = field(default_factory=list)
    read: int | None = None

    def damaged(self, before: int) -> None:
        """A damaged packet was skipped before source frame ``before``."""
        self.skipped.append(before)

    @property
    def packets(self) -> int:
        return len(self.skipped)

    def missing(self, first: int, count: int, start: float, end: float) -> None:
        """Frames ``first`` .. ``first + count - 1`` were lost (merged with a gap just before them)."""
        if self.gaps and self.gaps[-1].last + 1 == first:
            previous = self.gaps.pop()
            first, count, start = previous.first, previous.count + count, previous.start
        self.gaps.append(FrameGap(first, count, start, end))

    def ended(self, frames: int) -> None:
        """The video ended after ``frames`` source frames (decoded or lost)."""
        self.read = frames

    @property
    def lost_frames(self) -> int:
        return sum(gap.count for gap in self.gaps)

    @property
    def short(self) -> bool:
        """Fewer frames than declared (a frame of slack where the count comes from the duration)."""
        return self.declared is not None and self.read is not None and self.read < self.declared - 1

    @property
    def faulty(self) -> bool:
        return bool(self.packets or self.gaps or self.short)

    def lost_between(self, start: float, end: float) -> int:
        """Frames lost inside the time span ``start`` .. ``end`` (seconds)."""
        return sum(gap.count for gap in self.gaps if start <= gap.start and gap.end <= end)

    def until(self, frame: int) -> DecodeReport:
        """The faults met before source frame ``frame`` + 1 (what a resumed run starts with)."""
        skipped = [before for before in self.skipped if before <= frame]
        return DecodeReport(self.declared, skipped, [gap for gap in self.gaps if gap.last <= frame])

    def messages(self, name: str) -> list[str]:
        """One line per kind of fault, for the user."""
        lines = []
        if self.packets or self.gaps:
            skipped = f"{self.packets} damaged packet{'s' if self.packets != 1 else ''} skipped"
            lost = "; ".join(gap.describe() for gap in self.gaps[:5])
            more = f" and {len(self.gaps) - 5} more gaps" if len(self.gaps) > 5 else ""
            lines.append(f"{name}: {skipped}" + (f"; {lost}{more} could not be decoded" if lost else ""))
        if self.short:
            lines.append(
                f"{name}: {self.read} of the {self.declared} frames its container declares were read "
                "(truncated or damaged file)"
            )
        return lines

    def to_dict(self) -> dict[str, object]:
        return {"declared": self.declared, "skipped": self.skipped, "gaps": [vars(g) for g in self.gaps]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DecodeReport:
        return cls(data["declared"], list(data["skipped"]), [FrameGap(**gap) for gap in data["gaps"]])
