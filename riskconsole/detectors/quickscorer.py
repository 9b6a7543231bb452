"""Exact LightGBM raw scores for many rows, faster than walking the trees: bit vectors over small trees.

A tree walk costs one dependent load chain per level (~1,150 node visits per row for the 211-tree demo
model), which is what LightGBM's `predict` and the tl2cgen-compiled if-else code both pay. Here the
QuickScorer idea (Lucchese et al., SIGIR 2015) is taken one step further with the model's own thresholds:

* Each feature's split thresholds (at most 254 per feature: LightGBM's 255 bins) cut its values into
  bins, so a row is first mapped to one small integer per feature (branch-free binary search; NaN, the
  zero that `zero_as_missing` means and unseen categories get bins of their own).
* Within one bin every split on that feature goes the same way. Number each tree's leaves left to right;
  a split that sends the row right rules out its left subtree's leaves. So for each (feature, bin) and
  tree, the AND of those "ruled out" masks is tabulated once (`_tables`), and a row's mask for every tree
  is the AND over its features of one table row: a few contiguous, vectorised ANDs, no data-dependent
  branch, no dependent loads.
* The row's leaf in a tree is the lowest set bit of its mask (the leftmost leaf not ruled out), and the
  raw score is the sum of those leaves' values in tree order, in float64, starting from 0.0: the very
  additions LightGBM makes, so the result is bit-identical. Blocks of rows go through each tree together
  so independent sums overlap in the pipeline; the two halves of a batch run on two threads.

Numeric splits with every missing type (None: NaN scores as 0.0; Zero; NaN), LightGBM's snapping of
|x| <= 1e-35 to 0, and categorical (bitset) splits are covered. Not covered (the caller keeps its other
paths): linear trees, several trees per iteration, trees of more than 64 leaves, a table larger than
MAX_TABLE_BYTES. `Scorer.check` compares with `Booster.predict` before the scorer is trusted.
"""

from __future__ import annotations

import numba  # a dependency of PyOD; this module is imported only when a big batch is scored
import numpy as np
from numba.cpython.unsafe.numbers import trailing_zeros

# LightGBM's model encoding, read the same way as for explanations
from riskconsole.detectors.treeshap import CATEGORICAL, MISSING, NUMERIC, ZERO, Unsupported

MAX_TABLE_BYTES = 256 * 2**20
ROWS = 32  # rows per block: their masks (ROWS x trees) stay in L1 while the leaves are summed


def _splits(tree: dict) -> tuple[list[dict], int]:
    """The tree's splits, each with the leaf range [lo, hi) of its left subtree (leaves numbered left to
    right), and its number of leaves."""
    out: list[dict] = []

    def walk(node: dict, first: int) -> int:  # returns the next leaf number
        if "split_index" not in node:
            return first + 1
        split = {"feature": int(node["split_feature"]), "decision": node["decision_type"],
                 "threshold": node["threshold"], "missing": MISSING.get(node["missing_type"], -1),
                 "default_left": bool(node["default_left"])}
        if split["decision"] not in ("<=", "==") or split["missing"] < 0:
            raise Unsupported(f"split {split['decision']} / missing type {node['missing_type']}")
        out.append(split)
        middle = walk(node["left_child"], first)
        split["lo"], split["hi"] = first, middle
        return walk(node["right_child"], middle)

    import sys

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    leaves = walk(tree["tree_structure"], 0)
    return out, leaves


def _leaf_values(tree: dict) -> list[float]:
    values: list[float] = []
    stack = [tree["tree_structure"]]
    while stack:  # left to right: push right first
        node = stack.pop()
        if "split_index" not in node:
            values.append(float(node["leaf_value"]))
        else:
            stack += [node["right_child"], node["left_child"]]
    return values


class _Feature:
    """How one feature's values map to bins, and which way each of its splits sends each bin."""

    def __init__(self, splits: list[dict]) -> None:
        self.kind = CATEGORICAL if splits[0]["decision"] == "==" else NUMERIC
        if self.kind == NUMERIC:
            cuts = {_threshold(s) for s in splits}
            if any(s["missing"] == MISSING["Zero"] for s in splits):
                cuts |= {-5e-324, 0.0}  # 0.0 (after snapping) gets a bin of its own
            self.cuts = np.asarray(sorted(cuts), dtype=np.float64)
            self.bins = len(self.cuts) + 2  # values 0..len(cuts), then NaN
        else:
            cats = sorted({int(c) for s in splits for c in str(s["threshold"]).split("||") if c != ""})
            self.cats = np.asarray(cats, dtype=np.int64)
            self.bins = len(cats) + 1  # each category a split names, then everything else (NaN, negative, unseen)

    def goes_left(self, split: dict) -> np.ndarray:
        """For each bin, whether `split` sends its rows left (LightGBM's Numerical/CategoricalDecision)."""
        if self.kind == CATEGORICAL:
            left = {int(c) for c in str(split["threshold"]).split("||") if c != ""}
            return np.asarray([c in left for c in self.cats] + [False])
        threshold = _threshold(split)
        bins = np.arange(len(self.cuts) + 1)
        left = bins <= np.searchsorted(self.cuts, threshold)  # a bin's values are all <= a cut or all above
        missing, default = split["missing"], split["default_left"]
        if missing == MISSING["Zero"]:
            left[np.searchsorted(self.cuts, 0.0)] = default
        # NaN: the default way for missing types NaN and Zero (NaN is read as 0.0, a zero); else 0.0's way
        nan = default if missing != MISSING["None"] else 0.0 <= threshold
        return np.append(left, nan)


def _threshold(split: dict) -> float:
    """A numeric split's threshold. LightGBM writes an infinite one as +-1e300 (`AvoidInf`) but compares with
    infinity (+inf <= the threshold goes left), so read it back as infinite."""
    value = float(split["threshold"])
    return float(np.inf) if value >= 1e300 else float(-np.inf) if value <= -1e300 else value


def _padded(cuts: np.ndarray) -> tuple[np.ndarray, int]:
    """Cuts padded with +inf to 2^steps - 1 entries, for a branch-free binary search of `steps` steps."""
    steps = int(np.ceil(np.log2(len(cuts) + 1))) if len(cuts) else 0
    return np.concatenate([cuts, np.full((1 << steps) - 1 - len(cuts), np.inf)]), steps


class Scorer:
    """`Booster.predict(X, raw_score=True)` of a LightGBM binary/regression booster, computed with bit vectors."""

    def __init__(self, dump: dict) -> None:
        if dump.get("num_tree_per_iteration", 1) != 1:
            raise Unsupported("several trees per iteration")
        trees = dump["tree_info"]
        if any(t.get("is_linear") or "leaf_coeff" in t["tree_structure"] for t in trees):
            raise Unsupported("linear trees")
        parsed = [_splits(t) for t in trees]
        widest = max([leaves for _, leaves in parsed] + [1])
        if widest > 64:
            raise Unsupported("a tree with more than 64 leaves")
        self.dtype = next(d for d in (np.uint8, np.uint16, np.uint32, np.uint64) if np.iinfo(d).bits >= widest)
        self._bins(parsed)
        self._tables(parsed)
        values = [_leaf_values(t) for t in trees]
        self.leaf_offset = np.concatenate([[0], np.cumsum([len(v) for v in values])[:-1]]).astype(np.int64)
        self.leaf_value = np.asarray([x for v in values for x in v], dtype=np.float64)

    def _bins(self, parsed: list) -> None:
        by_feature: dict[int, list[dict]] = {}
        for splits, _ in parsed:
            for s in splits:
                by_feature.setdefault(s["feature"], []).append(s)
        if any(len({s["decision"] for s in group}) > 1 for group in by_feature.values()):
            raise Unsupported("a feature split both as a number and as a category")
        self.columns = np.asarray(sorted(by_feature), dtype=np.int64)  # the input columns the trees read
        self.features = {f: _Feature(by_feature[f]) for f in self.columns.tolist()}
        sizes = [self.features[f].bins for f in self.columns.tolist()]
        self.row_offset = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
        self.rows = int(sum(sizes))
        self.last = np.asarray(sizes, dtype=np.int64) - 1  # NaN's bin (numeric), no split's category (categorical)
        if self.rows * len(parsed) * np.dtype(self.dtype).itemsize > MAX_TABLE_BYTES:
            raise Unsupported("the bit-vector table would exceed 256 MB")
        # numeric: padded cuts, searched in `steps` steps; categorical: code -> bin (the last bin: no split's category)
        cuts, steps, cut_offset, catmap, cat_offset, cat_len = [], [], [], [], [], []
        for f in self.columns.tolist():
            feat = self.features[f]
            cut_offset.append(sum(len(c) for c in cuts))
            cat_offset.append(sum(len(c) for c in catmap))
            if feat.kind == NUMERIC:
                padded, n = _padded(feat.cuts)
                cuts.append(padded)
                steps.append(n)
                cat_len.append(-1)
            else:
                table = np.full(int(feat.cats.max()) + 1 if len(feat.cats) else 0, feat.bins - 1, dtype=np.int64)
                table[feat.cats] = np.arange(len(feat.cats))
                catmap.append(table)
                steps.append(0)
                cat_len.append(len(table))
        self.cuts = np.concatenate(cuts) if cuts else np.zeros(1)
        self.steps, self.cut_offset = np.asarray(steps, np.int64), np.asarray(cut_offset, np.int64)
        self.catmap = np.concatenate(catmap) if catmap else np.zeros(1, np.int64)
        self.cat_offset, self.cat_len = np.asarray(cat_offset, np.int64), np.asarray(cat_len, np.int64)

    def _tables(self, parsed: list) -> None:
        """table[row_offset[j] + bin, tree]: the leaves of `tree` still possible when column j is in `bin`."""
        self.table = np.full((self.rows, len(parsed)), np.iinfo(self.dtype).max, dtype=self.dtype)
        where = {f: j for j, f in enumerate(self.columns.tolist())}
        for t, (splits, _) in enumerate(parsed):
            for s in splits:
                j = where[s["feature"]]
                right = ~self.features[s["feature"]].goes_left(s)
                ruled_out = ((1 << (s["hi"] - s["lo"])) - 1) << s["lo"]
                lo = self.row_offset[j]
                column = self.table[lo:lo + len(right), t]
                column[right] &= self.dtype(~ruled_out & int(np.iinfo(self.dtype).max))

    def raw(self, X: np.ndarray, threads: int = 2) -> np.ndarray:
        """The raw score (sum of leaf values) of every row of X (float32 or float64, features as columns)."""
        X = np.ascontiguousarray(X)
        if X.dtype not in (np.float32, np.float64):
            X = X.astype(np.float64)
        out = np.zeros(len(X), dtype=np.float64)
        if not len(X):
            return out
        args = (X, self.columns, self.steps, self.cuts, self.cut_offset, self.catmap, self.cat_offset,
                self.cat_len, self.last, self.row_offset, self.table, self.leaf_offset, self.leaf_value, out)
        kernel = _score
        parts = max(1, min(threads, len(X) // 4096))
        if parts == 1:
            kernel(0, len(X), *args)
            return out
        from concurrent.futures import ThreadPoolExecutor

        cuts = np.linspace(0, len(X), parts + 1).astype(np.int64)
        with ThreadPoolExecutor(parts) as pool:  # the kernel releases the GIL
            list(pool.map(lambda i: kernel(int(cuts[i]), int(cuts[i + 1]), *args), range(parts)))
        return out


@numba.njit(cache=True, nogil=True)
def _score(lo, hi, X, columns, steps, cuts, cut_offset, catmap, cat_offset, cat_len, last, row_offset, table,
          leaf_offset, leaf_value, out):
    n_cols, n_trees = columns.shape[0], table.shape[1]
    index = np.empty((ROWS, n_cols), dtype=np.int64)
    masks = np.empty((ROWS, n_trees), dtype=table.dtype)
    acc = np.empty(ROWS, dtype=np.float64)
    for start in range(lo, hi, ROWS):
        rows = min(ROWS, hi - start)
        for i in range(rows):  # each value's bin, as a row of the table
            for j in range(n_cols):
                v = np.float64(X[start + i, columns[j]])
                if cat_len[j] < 0:
                    if v >= -ZERO and v <= ZERO:  # LightGBM reads |x| <= kZeroThreshold as 0
                        v = 0.0
                    pos = 0
                    base = cut_offset[j]
                    step = 1 << steps[j]
                    for _ in range(steps[j]):  # branch-free binary search: pos = #cuts < v
                        step >>= 1
                        pos += step * (cuts[base + pos + step - 1] < v)
                    if v != v:  # NaN: the feature's last bin
                        pos = last[j]
                    index[i, j] = row_offset[j] + pos
                else:
                    b = last[j]  # NaN, negative, beyond every split's categories
                    if v > -1.0 and v < cat_len[j]:  # LightGBM truncates toward zero: (-1, 0) is category 0
                        b = catmap[cat_offset[j] + np.int64(v)]
                    index[i, j] = row_offset[j] + b
        for i in range(rows):  # each tree's possible leaves: AND of one table row per column
            m = masks[i]
            if n_cols == 0:  # only one-leaf trees
                m[:] = 1
                continue
            first = table[index[i, 0]]
            for t in range(n_trees):
                m[t] = first[t]
            for j in range(1, n_cols):
                other = table[index[i, j]]
                for t in range(n_trees):
                    m[t] &= other[t]
        for i in range(rows):
            acc[i] = 0.0
        for t in range(n_trees):  # tree order, as LightGBM adds them: bit-identical sums
            base = leaf_offset[t]
            for i in range(rows):
                acc[i] += leaf_value[base + trailing_zeros(masks[i, t])]
        for i in range(rows):
            out[start + i] = acc[i]
    return out
