"""The paired bootstrap: one set of resampled rows per replicate, applied to both models.

Resampling the same row indices for the champion and the challenger is what makes it paired:
each replicate keeps the rows' pairing, so the interval of a difference is as narrow as the two
models' agreement allows. A replicate is a vector of counts (how often each held-out row was
drawn), so every mean-based statistic of every metric is one matrix product over the same
counts, and ROC AUC is read from them by look-ups prepared once (no sort per replicate).

Counts are built in chunks of replicates, so memory stays bounded whatever the number of rows.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

# Counts per chunk (replicates x rows): half a megabyte of float64, so a chunk stays in the CPU's
# cache; larger chunks measured slower (random increments miss the cache), not faster.
CHUNK_CELLS = 1 << 16


def resampled_counts(rows: int, resamples: int, seed: int) -> Iterator[np.ndarray]:
    """Chunks of (replicates, rows) float counts: row i drawn C[r, i] times in replicate r.

    numpy's Generator seeded with `seed`: the same inputs give the same replicates.
    """
    if rows < 1:
        raise ValueError("the bootstrap needs at least one held-out row")
    rng = np.random.default_rng(seed)
    chunk = max(1, CHUNK_CELLS // rows)
    for start in range(0, resamples, chunk):
        replicates = min(chunk, resamples - start)
        drawn = rng.integers(0, rows, size=(replicates, rows), dtype=np.int64)
        drawn += np.arange(replicates)[:, None] * rows  # one range of bins per replicate
        counts = np.bincount(drawn.ravel(), minlength=replicates * rows)
        yield counts.reshape(replicates, rows).astype(np.float64)


@dataclass(frozen=True)
class RankedScores:
    """A binary model's scores prepared once for the AUC of any replicate.

    The negatives in score order, and for each positive how many negatives score strictly below
    it and how many at most as high: a replicate's AUC is then two look-ups into the cumulative
    weight of the negatives, with no sort per replicate.
    """

    positives: np.ndarray  # row indices of the positive class
    negatives: np.ndarray  # row indices of the negative class, lowest score first
    below: np.ndarray  # per positive: negatives scoring strictly lower
    not_above: np.ndarray  # per positive: negatives scoring lower or the same

    @classmethod
    def of(cls, scores: np.ndarray, positive: np.ndarray) -> RankedScores:
        positives, negatives = np.flatnonzero(positive), np.flatnonzero(~positive)
        negatives = negatives[np.argsort(scores[negatives], kind="stable")]
        negative_scores = scores[negatives]
        below = np.searchsorted(negative_scores, scores[positives], side="left")
        not_above = np.searchsorted(negative_scores, scores[positives], side="right")
        return cls(positives, negatives, below, not_above)


def weighted_auc(counts: np.ndarray, ranked: RankedScores) -> np.ndarray:
    """ROC AUC of each replicate (row of `counts`); NaN where a replicate lacks one class.

    The Mann-Whitney form: over positive-negative pairs, the share where the positive scores
    higher, ties counting half. Rows drawn k times count k times, as if copied.
    """
    negative_weights = np.take(counts, ranked.negatives, axis=1)
    cumulative = np.zeros((len(counts), len(ranked.negatives) + 1))
    np.cumsum(negative_weights, axis=1, out=cumulative[:, 1:])
    beaten = np.take(cumulative, ranked.below, axis=1)
    if not np.array_equal(ranked.below, ranked.not_above):  # ties: half of each tied pair
        beaten = 0.5 * (beaten + np.take(cumulative, ranked.not_above, axis=1))
    positive_weights = np.take(counts, ranked.positives, axis=1)
    pairs_won = np.einsum("ij,ij->i", positive_weights, beaten)
    pairs = positive_weights.sum(axis=1) * cumulative[:, -1]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(pairs > 0, pairs_won / pairs, np.nan)


def percentile_interval(replicates: np.ndarray, confidence: float) -> tuple[float, float]:
    """The percentile interval of the replicates that are defined (NaN ones are skipped)."""
    defined = replicates[~np.isnan(replicates)]
    if len(defined) == 0:
        return float("nan"), float("nan")
    tail = (1 - confidence) / 2
    low, high = np.quantile(defined, [tail, 1 - tail])
    return float(low), float(high)
