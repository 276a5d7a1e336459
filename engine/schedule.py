"""The order a run's cells (case x repeat) are run in on one host, so that no model is favoured by
when it ran: one model runs its cells in order; models that fit in memory together are interleaved
(a shuffled model order per cell, from the run's seed); models that do not are run in ABBA blocks
(the first half of the cells A then B, the second half B then A). The plan is data: recorded with
the run, and testable without a model.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass
class Schedule:
    mode: str  # sequential, interleaved or abba
    models: list[str]
    cells: list[tuple]  # (case, repeat), case having an `id`
    orders: list[list[str]] = field(default_factory=list)  # interleaved: the model order per cell
    blocks: list[tuple[list[str], list[tuple]]] = field(default_factory=list)  # abba: (models, cells)

    def record(self) -> dict:
        """As the run records it (`schedule` in its configuration)."""
        out: dict = {"mode": self.mode, "models": self.models}
        if self.mode == "interleaved":
            out["order"] = [[c.id, r, o] for (c, r), o in zip(self.cells, self.orders)]
        elif self.mode == "abba":
            out["blocks"] = [{"models": m, "cells": [[c.id, r] for c, r in part]} for m, part in self.blocks]
        return out


def plan(models: list[str], cells: list[tuple], fit_together: bool, seed: int | None) -> Schedule:
    """The schedule of `models` over `cells` on one host."""
    if len(models) == 1:
        return Schedule("sequential", models, cells)
    if fit_together:
        rng = random.Random(seed if seed is not None else 0)
        return Schedule("interleaved", models, cells, orders=[rng.sample(models, len(models)) for _ in cells])
    half = (len(cells) + 1) // 2
    return Schedule("abba", models, cells, blocks=[(models, cells[:half]), (list(reversed(models)), cells[half:])])
