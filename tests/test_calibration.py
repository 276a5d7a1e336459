"""The verdict's calibration by simulation (bench/calibration.py, 500 runs per figure there), here with
fewer runs: each goal loosened by three of the simulation's own standard errors at that many runs."""
import importlib.util
import math

import pytest

from tests.conftest import ROOT

spec = importlib.util.spec_from_file_location("calibration", ROOT / "bench" / "calibration.py")
calibration = importlib.util.module_from_spec(spec)
spec.loader.exec_module(calibration)

RUNS = 60


def se(p: float, n: int = RUNS) -> float:
    return math.sqrt(p * (1 - p) / n)


@pytest.mark.slow
def test_identical_models_are_rarely_named_a_winner():
    share, _ = calibration.share(calibration.identical, RUNS, seed=1000)
    assert share <= 0.05 + 3 * se(0.05)


@pytest.mark.slow
def test_a_true_quality_gap_of_a_tenth_is_found():
    share, _ = calibration.share(calibration.power, RUNS, seed=2000)
    assert share >= 0.80 - 3 * se(0.80)


@pytest.mark.slow
def test_the_intervals_of_a_difference_cover_the_truth():
    share, _ = calibration.share(calibration.coverage, RUNS, seed=3000)
    assert 0.93 - 3 * se(0.93) <= share <= min(1.0, 0.97 + 3 * se(0.97))
