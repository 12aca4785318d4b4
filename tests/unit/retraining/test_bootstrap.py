"""The bootstrap's pieces: replicates as counts, ROC AUC of a replicate, the percentile interval."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from tabserve.retraining import bootstrap
from tabserve.retraining.bootstrap import RankedScores, percentile_interval, resampled_counts, weighted_auc


def test_each_replicate_draws_as_many_rows_as_there_are() -> None:
    counts = np.vstack(list(resampled_counts(rows=37, resamples=500, seed=1)))
    assert counts.shape == (500, 37)
    assert (counts.sum(axis=1) == 37).all()
    # every row is drawn about once per replicate on average: 500 * 37 draws in all
    assert counts.mean(axis=0) == pytest.approx(np.ones(37), abs=0.2)


def test_chunks_keep_memory_bounded_and_the_seed_fixes_the_replicates(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(bootstrap, "CHUNK_CELLS", 100)
    chunks = list(resampled_counts(rows=40, resamples=7, seed=3))
    assert [len(chunk) for chunk in chunks] == [2, 2, 2, 1]  # 100 // 40 replicates a chunk
    again = np.vstack(list(resampled_counts(rows=40, resamples=7, seed=3)))
    assert np.array_equal(np.vstack(chunks), again)
    assert not np.array_equal(again, np.vstack(list(resampled_counts(rows=40, resamples=7, seed=4))))


@pytest.mark.parametrize("decimals", [1, 2, 12])  # heavy ties, some ties, none
def test_the_auc_of_a_replicate_is_the_auc_of_its_rows_copied(decimals: int) -> None:
    rng = np.random.default_rng(decimals)
    positive = rng.random(300) < 0.3
    scores = np.round(rng.random(300) + 0.4 * positive, decimals)
    ranked = RankedScores.of(scores, positive)
    counts = np.vstack(list(resampled_counts(rows=300, resamples=5, seed=decimals)))
    for replicate, auc in zip(counts, weighted_auc(counts, ranked), strict=True):
        drawn = np.repeat(np.arange(300), replicate.astype(int))
        assert auc == pytest.approx(roc_auc_score(positive[drawn], scores[drawn]), rel=1e-12)


def test_a_replicate_with_one_class_has_no_auc_and_is_skipped() -> None:
    ranked = RankedScores.of(np.array([0.1, 0.9, 0.4]), np.array([False, True, False]))
    only_negatives = np.array([[2.0, 0.0, 1.0]])
    assert np.isnan(weighted_auc(only_negatives, ranked)).all()
    assert percentile_interval(np.array([np.nan, 1.0, 2.0, 3.0]), 0.5) == (1.5, 2.5)
    assert all(np.isnan(percentile_interval(np.array([np.nan]), 0.9)))
