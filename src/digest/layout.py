"""The size budget: which form each entry takes so the inlined digest fits DIGEST_MAX_HTML_BYTES.

Part of render.py. Forms, longest first: ``full``, ``excerpt``, ``title``
(a card with the title and a link) and ``links`` (one line in a list at the
end: the linked title and the post's first sentence). Entries are newest
first; the oldest are shortened first.

The policy (unchanged where a digest fitted before the links form existed):
every entry in the target form (DIGEST_MODE) if that fits; else every entry
as an excerpt if that fits, or else excerpts for the newest and titles for
the rest, as many excerpts as fit; when even every entry as a title does not
fit, excerpts for the newest and links for the rest; then, in full mode, the
newest excerpts get their full text where it fits, newest first.

The cost: premailer (inlining) is the slow step and grows with the document,
and even one Jinja render of the whole digest grows with the number of
entries. So no layout is sized by rendering it once per candidate (that was
quadratic: 200 entries took 6 s). Instead:

* each entry's own HTML is measured once per form (``body_bytes``), which
  bounds how many excerpts can fit at all and prices each full-text upgrade
  by addition;
* the layouts of one family (k excerpts, then titles or links) shrink as k
  falls, so the best k is found by bisection: O(log n) whole renders;
* raw (un-inlined) bytes times the inflation ratio estimate inlined bytes;
  only the chosen layout is inlined, and checked. The longest layout is
  inlined first only when it is not far over the budget (FAR_OVER).

When the estimates keep missing (a custom template with unusual CSS), the
shortening order (the oldest entry in the longest form, one step at a time)
is bisected with premailer itself: still O(log n) inlines.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

FORMS = ("full", "excerpt", "title", "links")  # longest first
# Inlining adds each element's style and drops the non-@media rules; the
# bundled template's digests come out 1.14-1.18 times their raw size.
RATIO_GUESS = 1.2
# The longest layout is inlined first (as the search always did: then it
# usually fits, and otherwise its ratio is exact) unless its raw HTML is more
# than this many times the budget: a 200-entry digest is never inlined whole.
FAR_OVER = 3
ATTEMPTS = 4
# Bytes per entry the note and the contents list may change by between forms (a title named or not).
ENTRY_MARGIN = 256
REFINE_ROUNDS = 2  # after a fit found with RATIO_GUESS, at most this many longer layouts are tried


@dataclass
class RenderStats:
    """How many whole-digest renders a layout search took (a hook for tests and bench/render.py)."""

    template_renders: int = 0  # Jinja renders of the whole digest
    inline_runs: int = 0  # premailer runs

    @property
    def full_renders(self) -> int:
        return self.template_renders + self.inline_runs


class Sizer(Protocol):
    """What the search needs from render.py: sizes of layouts and of entries."""

    count: int
    target: str  # "full" or "excerpt"

    def raw_size(self, forms: Sequence[str]) -> int: ...  # one Jinja render of the whole digest

    def inlined_size(self, forms: Sequence[str]) -> int: ...  # one premailer run

    def body_bytes(self, index: int, form: str) -> int: ...  # the entry's own HTML in this form


@dataclass(frozen=True)
class Fit:
    forms: list[str]
    size: int  # inlined bytes of that layout
    fits: bool


class BudgetSearch:
    def __init__(self, sizer: Sizer, budget: int) -> None:
        self.sizer = sizer
        self.budget = budget
        self._raw: dict[tuple[str, ...], int] = {}
        self._inlined: dict[tuple[str, ...], int] = {}

    def raw(self, forms: Sequence[str]) -> int:
        key = tuple(forms)
        if key not in self._raw:
            self._raw[key] = self.sizer.raw_size(forms)
        return self._raw[key]

    def inlined(self, forms: Sequence[str]) -> int:
        key = tuple(forms)
        if key not in self._inlined:
            self._inlined[key] = self.sizer.inlined_size(forms)
        return self._inlined[key]

    def fit(self) -> Fit:
        count, budget, target = self.sizer.count, self.budget, self.sizer.target
        forms = [target] * count
        ratio = RATIO_GUESS
        room = FAR_OVER * budget - self.raw(["title"] * count)
        if self._affordable(target, "title", room) == count and self.raw(forms) <= FAR_OVER * budget:
            size = self.inlined(forms)
            if size <= budget:
                return Fit(forms, size, True)
            ratio = size / self.raw(forms)
        guessed = ratio == RATIO_GUESS
        for _attempt in range(ATTEMPTS):
            forms = self.choose(budget / ratio)
            size = self.inlined(forms)
            if size <= budget:
                # Layouts differ in inflation (links inflate least): a ratio measured on another one may waste room.
                wasteful = guessed or size / self.raw(forms) * 1.02 < ratio
                return self._refine(forms, size) if wasteful else Fit(forms, size, True)
            guessed = False
            ratio = max(ratio, size / self.raw(forms)) * 1.01
        return self._bisect_shortening(forms, size)

    def _refine(self, forms: list[str], size: int) -> Fit:
        """A layout chosen with the guessed ratio fits: with measured ratios, a longer one may fit too."""
        best = Fit(forms, size, True)
        ratio = size / self.raw(forms)
        for _round in range(REFINE_ROUNDS):
            longer = self.choose(self.budget / ratio)  # no margin: premailer checks it
            if self.raw(longer) <= self.raw(best.forms):
                break
            longer_size = self.inlined(longer)
            if longer_size <= self.budget:
                best = Fit(longer, longer_size, True)
            ratio = max(ratio, longer_size / self.raw(longer))
        return best

    def choose(self, raw_budget: float) -> list[str]:
        """The policy above, for a budget in raw bytes; O(log n) whole renders."""
        count = self.sizer.count
        forms = ["links"] * count  # when nothing fits, the shortest layout
        for tail in ("title", "links"):  # titles for the oldest; links when even all titles are too long
            room = raw_budget - self.raw([tail] * count)
            if room >= 0:

                def layout(k: int, tail: str = tail) -> list[str]:
                    return ["excerpt"] * k + [tail] * (count - k)

                forms = layout(self._most(layout, self._affordable("excerpt", tail, room), raw_budget) or 0)
                break
        if self.sizer.target == "full":
            forms = self._upgrade(forms, raw_budget)
        return forms

    def _affordable(self, form: str, tail: str, room: float) -> int:
        """At most how many of the newest entries can be in ``form`` rather than ``tail`` within ``room`` bytes.

        A layout holds each entry's body verbatim, and a card holds more than a
        title card or a links line, so the difference in bodies (less a margin
        for the note and contents lines, which name titles) bounds the growth.
        Views are made only as far as needed.
        """
        extra = 0
        for index in range(self.sizer.count):
            extra += self.sizer.body_bytes(index, form) - self.sizer.body_bytes(index, tail) - ENTRY_MARGIN
            if extra > room:
                return index
        return self.sizer.count

    def _most(self, layout: Callable[[int], list[str]], high: int, raw_budget: float) -> int | None:
        """The largest k in [0, high] whose layout fits (layouts shrink as k falls); None if none does."""
        if self.raw(layout(0)) > raw_budget:
            return None
        low = 0  # fits
        while low < high:
            middle = (low + high + 1) // 2
            if self.raw(layout(middle)) <= raw_budget:
                low = middle
            else:
                high = middle - 1
        return low

    def _upgrade(self, forms: list[str], raw_budget: float) -> list[str]:
        """Full text for the newest excerpts, newest first, where it fits (priced by addition)."""
        estimate = self.raw(forms)
        upgraded: list[int] = []
        for index in range(len(forms)):
            if forms[index] != "excerpt":
                break
            extra = self.sizer.body_bytes(index, "full") - self.sizer.body_bytes(index, "excerpt")
            if estimate + extra <= raw_budget:
                estimate += extra
                upgraded.append(index)

        def with_first(kept: int) -> list[str]:
            chosen = set(upgraded[:kept])
            return ["full" if index in chosen else form for index, form in enumerate(forms)]

        if not upgraded or self.raw(with_first(len(upgraded))) <= raw_budget:
            return with_first(len(upgraded))
        return with_first(self._most(with_first, len(upgraded) - 1, raw_budget) or 0)

    def _bisect_shortening(self, forms: list[str], size: int) -> Fit:
        """The first layout along the shortening order that fits, by bisection over premailer runs."""
        steps = [list(forms)]
        while (index := next_to_shorten(steps[-1])) is not None:
            following = list(steps[-1])
            following[index] = FORMS[FORMS.index(following[index]) + 1]
            steps.append(following)
        last = len(steps) - 1
        last_size = self.inlined(steps[last])
        if last_size > self.budget:
            return Fit(steps[last], last_size, False)
        low, high, best = 1, last, (steps[last], last_size)  # steps[0] is known not to fit
        while low < high:
            middle = (low + high) // 2
            middle_size = self.inlined(steps[middle])
            if middle_size <= self.budget:
                high, best = middle, (steps[middle], middle_size)
            else:
                low = middle + 1
        return Fit(best[0], best[1], True)


def next_to_shorten(forms: Sequence[str]) -> int | None:
    """The oldest entry still in the longest form any entry has (links are the shortest)."""
    for form in FORMS[:-1]:
        for index in range(len(forms) - 1, -1, -1):
            if forms[index] == form:
                return index
    return None
