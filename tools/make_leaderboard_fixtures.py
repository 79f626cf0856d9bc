"""Reference values for the leaderboard's statistics, from numpy and scipy.

Writes Tests/EvalTests/Fixtures/leaderboard_statistics.json with:

- case bootstraps: masks grouped by case, the mean over masks (or over per-class means) and its 95 %
  percentile interval from resampling whole cases. The resamples come from medcat's generator
  (SplitMix64, `PromptRNG` in Sources/Prompts), re-implemented here, so both sides draw the same
  cases; the statistic and the percentiles are numpy's;
- ranking stability under the same draws;
- Wilcoxon signed-rank p-values from scipy.stats.wilcoxon with its defaults (exact, permutation and
  normal-approximation cases, with zeros and ties);
- Holm-adjusted p-values (numpy, the textbook step-down procedure).

    python3 tools/make_leaderboard_fixtures.py      # numpy and scipy
"""
import json
import os

import numpy as np
from scipy import stats

MASK = (1 << 64) - 1
GOLDEN = 0x9E3779B97F4A7C15


def mix(z):
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
    return z ^ (z >> 31)


class SplitMix:
    def __init__(self, seed):
        self.state = mix((seed + GOLDEN) & MASK)

    def next(self):
        self.state = (self.state + GOLDEN) & MASK
        return mix(self.state)


def weights(cases, resamples, seed):
    """How often each case is drawn, per resample: `cases` draws of next() % cases each."""
    rng = SplitMix(seed)
    for _ in range(resamples):
        yield np.bincount([rng.next() % cases for _ in range(cases)], minlength=cases)


def statistic(sums, counts, w):
    """Mean over strata (rows) of each stratum's weighted mean; strata without values are skipped."""
    s, c = sums @ w, counts @ w
    ok = c > 0
    return (s[ok] / c[ok]).mean() if ok.any() else None


def case_table(values, strata):
    """values: [(case, stratum, value)] -> case ids in first-seen order, sums and counts (strata × cases)."""
    ids = list(dict.fromkeys(v[0] for v in values))
    sums, counts = np.zeros((strata, len(ids))), np.zeros((strata, len(ids)))
    for case, stratum, value in values:
        k = ids.index(case)
        sums[stratum, k] += value
        counts[stratum, k] += 1
    return ids, sums, counts


def bootstrap(values, strata, resamples, seed):
    ids, sums, counts = case_table(values, strata)
    mean = statistic(sums, counts, np.ones(len(ids)))
    draws = [s for s in (statistic(sums, counts, w) for w in weights(len(ids), resamples, seed)) if s is not None]
    low, high = np.percentile(draws, [2.5, 97.5]) if len(ids) >= 5 else (None, None)
    return {"values": [[int(c), int(s), float(v)] for c, s, v in values], "strata": strata, "resamples": resamples, "seed": seed,
            "mean": float(mean), "low": None if low is None else float(low), "high": None if high is None else float(high)}


def stability(runs, resamples, seed):
    """runs: one list of (case, value) per run over the same cases; how often each keeps its rank."""
    ids = list(dict.fromkeys(c for run in runs for c, _ in run))
    tables = []
    for run in runs:
        sums, counts = np.zeros(len(ids)), np.zeros(len(ids))
        for c, v in run:
            sums[ids.index(c)] += v
            counts[ids.index(c)] += 1
        tables.append((sums, counts))

    def ranks(means):
        return [1 + sum(o > m for o in means) for m in means]

    observed = ranks([s.sum() / c.sum() for s, c in tables])
    kept = np.zeros(len(runs))
    for w in weights(len(ids), resamples, seed):
        r = ranks([(s @ w) / (c @ w) for s, c in tables])
        kept += [a == b for a, b in zip(r, observed)]
    return {"runs": [[[int(c), float(v)] for c, v in run] for run in runs], "resamples": resamples, "seed": seed,
            "kept": (kept / resamples).tolist()}


def holm(p):
    p = np.asarray(p, dtype=float)
    order = np.argsort(p, kind="stable")
    adjusted = np.minimum(1, np.maximum.accumulate((len(p) - np.arange(len(p))) * p[order]))
    out = np.empty_like(p)
    out[order] = adjusted
    return out.tolist()


rng = np.random.default_rng(20261205)
fixture = {"bootstrap": [], "stability": [], "wilcoxon": [], "holm": []}

# Clustered scores: a case effect plus mask noise, cases with different numbers of masks.
for cases, seed in [(4, 11), (5, 12), (12, 13), (40, 14)]:
    values = []
    for c in range(cases):
        effect = rng.normal(0.7, 0.15)
        for _ in range(int(rng.integers(1, 7))):
            values.append((1000 + 7 * c, 0, float(np.clip(effect + rng.normal(0, 0.05), 0, 1))))
    fixture["bootstrap"].append(bootstrap(values, 1, 500, seed))
# A mean of per-class means: three classes, not every case holding every class.
values = [(c, k, float(rng.uniform(0.2 + 0.3 * k, 0.5 + 0.3 * k))) for c in range(9) for k in range(3) if (c + k) % 4 != 0 for _ in range(2)]
fixture["bootstrap"].append(bootstrap(values, 3, 400, 15))

for n_runs, seed in [(2, 21), (4, 22)]:
    cases = 10
    runs = [[(c, float(rng.normal(0.7 + 0.01 * r, 0.1))) for c in range(cases) for _ in range(2)] for r in range(n_runs)]
    fixture["stability"].append(stability(runs, 300, seed))

samples = [
    rng.normal(0.05, 0.1, 8),                         # exact: no ties, no zeros
    rng.normal(-0.02, 0.1, 30),                       # exact at n = 30
    np.round(rng.normal(0.03, 0.1, 10), 1),           # ties: all sign flips
    np.concatenate([[0, 0], rng.normal(0.1, 0.1, 9)]),  # zeros: all sign flips
    np.round(rng.normal(0.02, 0.1, 25), 1),           # ties, n = 25: normal approximation
    np.concatenate([[0.0], np.round(rng.normal(0.01, 0.1, 70), 2)]),  # n > 50
    np.full(12, 0.1),                                 # every difference equal
    rng.normal(0.3, 0.05, 6),                         # small and one-sided
]
for d in samples:
    fixture["wilcoxon"].append({"d": [float(x) for x in d], "p": float(stats.wilcoxon(d).pvalue)})
fixture["wilcoxon"].append({"d": [0.0, 0.0, 0.0], "p": None})

for p in [[0.01, 0.04, 0.03, 0.005], [0.2, 0.01, 0.6, 0.04, 0.04], [0.5]]:
    fixture["holm"].append({"p": p, "adjusted": holm(p)})

path = os.path.join(os.path.dirname(__file__), "..", "Tests", "EvalTests", "Fixtures", "leaderboard_statistics.json")
with open(path, "w") as f:
    json.dump(fixture, f, indent=1)
print(f"wrote {os.path.normpath(path)}")
