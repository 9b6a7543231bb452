"""Exact TreeSHAP for many rows at once: the same numbers as LightGBM's `pred_contrib`, ~10-50x faster.

LightGBM's `pred_contrib` runs path-dependent TreeSHAP (Lundberg et al. 2020, Algorithm 2) row by row:
O(trees x leaves x depth^2) per row, ~1,000 rows/s for the demo model. Here the same Shapley values are
computed the "Fast TreeSHAP v2" way (Yang 2021): for one leaf with k distinct features on its path, the
value function of a coalition S is

    f_leaf(S) = v * prod_{i in S} o_i * prod_{i not in S} z_i

where z_i is the product of the path's cover ratios on feature i (`internal_count` / `leaf_count`,
exactly what LightGBM's TreeSHAP uses) and o_i is 1 when the row satisfies every condition on feature i
along the path, else 0. A row enters only through the k bits o_i, so each leaf's k Shapley values are
tabulated once for all 2^k bit patterns (`_tables`, numpy, vectorised over leaves of equal k); a row then
costs one decision per node and one table look-up per leaf (`_contrib`, compiled by numba, which PyOD
already depends on, parallel over rows). The base value (last column) is LightGBM's own `ExpectedValue`.

Exactness: agrees with `pred_contrib` within ~1e-12 (the same sums in another order); `Explainer` checks
every model on its first rows against `pred_contrib` and falls back to it (1e-9), as does any model this
does not cover (linear trees, several trees per iteration, unknown split types), and numba failing.
"""

from __future__ import annotations

import hashlib
from math import factorial
from pathlib import Path

import numpy as np

CHECK_ROWS, CHECK_TOL = 16, 1e-9
STACK = 64  # DFS stack per row: a tree may be at most 63 levels deep
BLOCK = 2048  # rows per block (see `_kernel`)
HASH = 4096  # hash slots for the ways through one tree in a block: a power of two, 2 x BLOCK (12 bits)
ZERO = float(np.float32(1e-35))  # LightGBM's kZeroThreshold (a float constant widened to double)
NUMERIC, CATEGORICAL = 0, 1
MISSING = {"None": 0, "Zero": 1, "NaN": 2}
KEYS = ("cat_bits", "cat_offset", "cat_start", "cat_words", "default_left", "feature", "kind", "leaf_feat_offset",
        "leaf_k", "leaf_left", "leaf_lo", "leaf_local", "leaf_masks", "leaf_offset", "missing", "node_lo", "table",
        "threshold", "tree_feat_offset", "tree_feats")  # the arrays the kernel reads (and `save` writes)


class Unsupported(Exception):
    """A model a fast exact path does not cover (here: TreeSHAP, the caller falls back to `pred_contrib`; in
    quickscorer.py: bit-vector scoring, the caller falls back to compiled trees or `Booster.predict`)."""


def _flatten(dump: dict) -> dict:
    """Node and leaf arrays of every tree (global indices), each node's slot on its path, each leaf's path."""
    if dump.get("num_tree_per_iteration", 1) != 1 or dump.get("num_class", 1) != 1:
        raise Unsupported("several trees per iteration")
    nodes = {k: [] for k in ("feature", "threshold", "kind", "missing", "default_left", "left", "right", "slot")}
    cats: list[np.ndarray] = []
    cat_start = []
    leaves = {"value": [], "k": [], "z": [], "features": [], "masks": [], "left": []}
    roots, deepest, node_lo, leaf_lo = [], 0, [], []
    for tree in dump["tree_info"]:
        root = tree["tree_structure"]
        if tree.get("is_linear") or "leaf_coeff" in root:
            raise Unsupported("linear trees")
        if "split_index" not in root:  # a single leaf: only the base value
            roots.append(-1)
            continue
        roots.append(len(nodes["feature"]))
        first = len(nodes["feature"])
        node_lo.append(first)
        leaf_lo.append(len(leaves["value"]))
        # iterative DFS: (node, path features in first-seen order, their zero fractions, parent, side, depth,
        # per path feature the bit mask of its path nodes (tree-local), the mask of path nodes that went left)
        stack = [(root, [], [], None, None, 0, [], 0)]
        while stack:
            node, feats, zs, parent, side, depth, masks, lefts = stack.pop()
            deepest = max(deepest, depth)
            if "split_index" not in node:
                index = ~len(leaves["value"])
                leaves["value"].append(float(node["leaf_value"]))
                leaves["k"].append(len(feats))
                leaves["z"].append(list(zs))
                leaves["features"].append(list(feats))
                leaves["masks"].append(list(masks))
                leaves["left"].append(lefts)
            else:
                index = len(nodes["feature"])
                f = int(node["split_feature"])
                decision = node["decision_type"]
                if decision == "<=":
                    nodes["kind"].append(NUMERIC)
                    nodes["threshold"].append(float(node["threshold"]))
                    cat_start.append(-1)
                elif decision == "==":
                    nodes["kind"].append(CATEGORICAL)
                    nodes["threshold"].append(0.0)
                    left_set = [int(c) for c in str(node["threshold"]).split("||") if c != ""]
                    cat_start.append(len(cats))
                    cats.append(np.asarray(sorted(left_set), dtype=np.int64))
                else:
                    raise Unsupported(f"split type {decision}")
                nodes["feature"].append(f)
                nodes["missing"].append(MISSING.get(node["missing_type"], -1))
                if nodes["missing"][-1] < 0:
                    raise Unsupported(f"missing type {node['missing_type']}")
                nodes["default_left"].append(bool(node["default_left"]))
                nodes["left"].append(0)
                nodes["right"].append(0)
                if f in feats:
                    slot = feats.index(f)
                    nodes["slot"].append(slot)
                    child_feats, child_zs, child_masks = feats, zs, masks
                else:
                    slot = len(feats)
                    nodes["slot"].append(slot)
                    child_feats, child_zs, child_masks = feats + [f], zs + [1.0], masks + [0]
                bit = 1 << (index - first)
                if index - first >= 63:
                    raise Unsupported("a tree with more than 63 splits")
                w = float(node["internal_count"])
                for child_side in ("right", "left"):
                    child = node[f"{child_side}_child"]
                    count = float(child["internal_count"] if "split_index" in child else child["leaf_count"])
                    z = list(child_zs)
                    z[slot] = z[slot] * (count / w)
                    m = list(child_masks)
                    m[slot] |= bit
                    stack.append((child, child_feats, z, index, child_side, depth + 1, m,
                                  lefts | bit if child_side == "left" else lefts))
            if parent is not None:
                nodes[side][parent] = index
    if deepest >= STACK:
        raise Unsupported(f"a tree deeper than {STACK - 1}")
    node_lo.append(len(nodes["feature"]))
    leaf_lo.append(len(leaves["value"]))
    return {"node_lo": np.asarray(node_lo, np.int64), "leaf_lo": np.asarray(leaf_lo, np.int64),
            "nodes": {k: np.asarray(v) for k, v in nodes.items()}, "cat_start": np.asarray(cat_start, np.int64),
            "cats": cats, "leaves": leaves, "roots": np.asarray(roots, np.int64)}


def _weights(k: int) -> np.ndarray:
    """Shapley weights |S|! (k-1-|S|)! / k! for |S| = 0..k-1."""
    return np.array([factorial(m) * factorial(k - 1 - m) / factorial(k) for m in range(k)])


def _tables(leaves: dict) -> tuple[np.ndarray, np.ndarray]:
    """Per leaf, its k Shapley values for every pattern of matched features, flattened; and each leaf's offset.

    Entry [offset + pattern * k + s] is the contribution to the leaf's s-th path feature when the row
    satisfies exactly the path features whose bits are set in `pattern`.
    """
    ks = np.asarray(leaves["k"], dtype=np.int64)
    sizes = np.where(ks > 0, (1 << ks) * ks, 0)
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
    table = np.zeros(int(sizes.sum()), dtype=np.float64)
    values = np.asarray(leaves["value"], dtype=np.float64)
    for k in np.unique(ks[ks > 0]):
        k = int(k)
        which = np.flatnonzero(ks == k)
        z = np.asarray([leaves["z"][i] for i in which], dtype=np.float64)  # (L, k)
        patterns = np.arange(1 << k)
        o = ((patterns[:, None] >> np.arange(k)) & 1).astype(np.float64)  # (P, k)
        w = _weights(k)
        out = np.empty((len(which), 1 << k, k))
        for s in range(k):
            # coefficients of prod_{i != s} (z_i + o_i t): c[m] sums the coalitions of size m
            c = np.zeros((len(which), 1 << k, k))
            c[:, :, 0] = 1.0
            for i in range(k):
                if i == s:
                    continue
                zi = z[:, i][:, None, None]
                oi = o[:, i][None, :, None]
                shifted = np.concatenate([np.zeros_like(c[:, :, :1]), c[:, :, :-1]], axis=2)
                c = c * zi + shifted * oi
            out[:, :, s] = (c @ w) * (o[None, :, s] - z[:, s][:, None]) * values[which][:, None]
        for row, leaf in enumerate(which):
            table[offsets[leaf]:offsets[leaf] + sizes[leaf]] = out[row].reshape(-1)
    return table, offsets


def _kernel():
    import numba

    @numba.njit(cache=True, nogil=True)
    def contrib(lo, hi, X, node_lo, leaf_lo, feature, threshold, kind, missing, default_left, cat_start,
                cat_bits, cat_offset, cat_words, leaf_k, leaf_offset, leaf_feat_offset, leaf_local, leaf_masks,
                leaf_left, tree_feat_offset, tree_feats, table, out):
        # A tree's contributions to a row depend only on which way the row goes at each of its splits: rows
        # of a block that go the same ways (most do) share one sum over the leaves, kept in a small hash.
        width = 1
        for t in range(tree_feat_offset.shape[0] - 1):
            width = max(width, tree_feat_offset[t + 1] - tree_feat_offset[t])
        keys = np.zeros(HASH, dtype=np.int64)
        stamp = np.full(HASH, -1, dtype=np.int64)
        slot_of = np.zeros(HASH, dtype=np.int64)
        sums = np.zeros((BLOCK, width), dtype=np.float64)
        generation = 0
        for start in range(lo, hi, BLOCK):
            end = min(hi, start + BLOCK)
            for t in range(node_lo.shape[0] - 1):
                n0, n1 = node_lo[t], node_lo[t + 1]
                f0, f1 = tree_feat_offset[t], tree_feat_offset[t + 1]
                generation += 1
                used = 0
                for r in range(start, end):
                    went_left = np.int64(0)  # bit i: the row goes left at the tree's i-th split
                    for node in range(n0, n1):
                        v = X[r, feature[node]]
                        if kind[node] == 0 and not np.isnan(v) and (missing[node] != 1 or v < -ZERO or v > ZERO):
                            # the common case, without a data-dependent branch
                            went_left |= np.int64(v <= threshold[node]) << (node - n0)
                            continue
                        go_left = False
                        if kind[node] == 0:
                            mt = missing[node]
                            if np.isnan(v) and mt != 2:
                                v = 0.0
                            if (mt == 1 and v >= -ZERO and v <= ZERO) or (mt == 2 and np.isnan(v)):
                                go_left = default_left[node]
                            else:
                                go_left = v <= threshold[node]
                        elif not np.isnan(v) and v > -1.0 and v < 2.0 ** 31:
                            iv = np.int64(v)
                            c = cat_start[node]
                            word = iv // 32
                            if word < cat_words[c]:
                                go_left = (cat_bits[cat_offset[c] + word] >> (iv % 32)) & 1 == 1
                        if go_left:
                            went_left |= np.int64(1) << (node - n0)
                    h = np.int64((np.uint64(went_left) * np.uint64(11400714819323198485)) >> np.uint64(52))
                    while stamp[h] == generation and keys[h] != went_left:
                        h = (h + 1) & (HASH - 1)
                    if stamp[h] != generation:  # a new way through the tree: sum its leaves once
                        stamp[h] = generation
                        keys[h] = went_left
                        slot_of[h] = used
                        for j in range(f1 - f0):
                            sums[used, j] = 0.0
                        for leaf in range(leaf_lo[t], leaf_lo[t + 1]):
                            k = leaf_k[leaf]
                            fo = leaf_feat_offset[leaf]
                            off = went_left ^ leaf_left[leaf]  # path nodes where the row goes the other way
                            code = 0
                            for s in range(k):
                                if off & leaf_masks[fo + s] == 0:
                                    code |= 1 << s
                            base = leaf_offset[leaf] + code * k
                            for s in range(k):
                                sums[used, leaf_local[fo + s]] += table[base + s]
                        used += 1
                    slot = slot_of[h]
                    for j in range(f1 - f0):
                        out[r, tree_feats[f0 + j]] += sums[slot, j]
        return out

    return contrib


_KERNEL = None


def _compiled():
    global _KERNEL
    if _KERNEL is None:
        _KERNEL = _kernel()
    return _KERNEL


class Explainer:
    """TreeSHAP contributions of a LightGBM booster, as `booster.predict(X, pred_contrib=True)` returns them."""

    def __init__(self, booster, cache: Path | None = None) -> None:
        """`cache`: a `.npz` file holding the prepared tables (written by `save`); used when it was made from
        this very model (same model text), which skips the set-up (~0.5 s for 500 trees)."""
        self.booster = booster
        self.fast: dict | None = None
        self.checked = False
        self.threads = 2
        try:
            self.fast = self._cached(cache) if cache is not None else None
            if self.fast is None:
                prepared = self._prepare(booster.dump_model())
                self.fast = {k: prepared[k] for k in KEYS}
        except Unsupported:
            self.fast = None

    def _fingerprint(self) -> str:
        return hashlib.sha256(self.booster.model_to_string().encode()).hexdigest()

    def _cached(self, path: Path) -> dict | None:
        try:
            with np.load(path, allow_pickle=False) as got:
                arrays = {k: got[k] for k in got.files}
        except (OSError, ValueError):
            return None
        if str(arrays.pop("fingerprint", "")) != self._fingerprint() or set(arrays) != set(KEYS):
            return None
        return arrays

    def save(self, path: Path) -> bool:
        """Write the prepared tables to `path` (.npz) for `Explainer(booster, cache=path)`; False if unsupported."""
        if self.fast is None:
            return False
        np.savez(path, fingerprint=np.str_(self._fingerprint()), **{k: self.fast[k] for k in KEYS})
        return True

    def _prepare(self, dump: dict) -> dict:
        flat = _flatten(dump)
        leaves = flat["leaves"]
        if max(leaves["k"] or [0]) > 20:
            raise Unsupported("a path with more than 20 distinct features")
        table, offsets = _tables(leaves)
        bits, offs, words = [], [], []
        for cat in flat["cats"]:
            n = int(cat.max()) // 32 + 1 if len(cat) else 1
            b = np.zeros(n, dtype=np.int64)
            for c in cat:
                b[c // 32] |= 1 << (int(c) % 32)
            offs.append(sum(words))
            words.append(n)
            bits.append(b)
        nodes = flat["nodes"]
        feats = [np.asarray(f, dtype=np.int64) for f in leaves["features"]]
        feat_offset = np.concatenate([[0], np.cumsum([len(f) for f in feats])[:-1]]).astype(np.int64)
        masks = [np.asarray(m, dtype=np.int64) for m in leaves["masks"]]
        # per tree, the features it splits on; per leaf slot, that feature's place in its tree's list
        tree_feats, tree_offset, local = [], [0], []
        for t in range(len(flat["leaf_lo"]) - 1):
            lo, hi = flat["leaf_lo"][t], flat["leaf_lo"][t + 1]
            used = sorted({f for leaf in range(lo, hi) for f in leaves["features"][leaf]})
            where = {f: j for j, f in enumerate(used)}
            local += [where[f] for leaf in range(lo, hi) for f in leaves["features"][leaf]]
            tree_feats += used
            tree_offset.append(len(tree_feats))
        return {
            "tree_feats": np.asarray(tree_feats or [0], np.int64), "tree_feat_offset": np.asarray(tree_offset, np.int64),
            "leaf_local": np.asarray(local or [0], np.int64),
            "node_lo": flat["node_lo"], "leaf_lo": flat["leaf_lo"],
            "leaf_masks": np.concatenate(masks) if masks else np.zeros(1, np.int64),
            "leaf_left": np.asarray(leaves["left"], np.int64),
            "feature": nodes["feature"].astype(np.int64), "threshold": nodes["threshold"].astype(np.float64),
            "kind": nodes["kind"].astype(np.int64), "missing": nodes["missing"].astype(np.int64),
            "default_left": nodes["default_left"].astype(np.bool_), "left": nodes["left"].astype(np.int64),
            "right": nodes["right"].astype(np.int64), "slot": nodes["slot"].astype(np.int64),
            "cat_start": flat["cat_start"],
            "cat_bits": np.concatenate(bits) if bits else np.zeros(1, np.int64),
            "cat_offset": np.asarray(offs or [0], np.int64), "cat_words": np.asarray(words or [0], np.int64),
            "leaf_k": np.asarray(leaves["k"], np.int64), "leaf_offset": offsets,
            "leaf_feat_offset": feat_offset,
            "leaf_feats": np.concatenate(feats) if feats else np.zeros(1, np.int64), "table": table,
        }

    def _fast(self, X: np.ndarray) -> np.ndarray:
        f = self.fast
        n_features = self.booster.num_feature()
        out = np.zeros((len(X), n_features + 1), dtype=np.float64)
        X64 = np.ascontiguousarray(X, dtype=np.float64)
        args = (X64, f["node_lo"], f["leaf_lo"], f["feature"], f["threshold"], f["kind"], f["missing"],
                f["default_left"], f["cat_start"], f["cat_bits"], f["cat_offset"], f["cat_words"], f["leaf_k"],
                f["leaf_offset"], f["leaf_feat_offset"], f["leaf_local"], f["leaf_masks"], f["leaf_left"],
                f["tree_feat_offset"], f["tree_feats"], f["table"], out)
        kernel = _compiled()
        parts = max(1, min(self.threads, len(X) // 256))
        cuts = np.linspace(0, len(X), parts + 1).astype(np.int64)
        if parts == 1:
            kernel(0, len(X), *args)
        else:  # the kernel releases the GIL: one Python thread per part runs it in parallel
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(parts) as pool:
                list(pool.map(lambda i: kernel(int(cuts[i]), int(cuts[i + 1]), *args), range(parts)))
        out[:, -1] = self.base
        return out

    def contrib(self, X: np.ndarray, threads: int = 2) -> np.ndarray:
        """(rows, features + 1): each feature's contribution to the raw score, then the base value."""
        X = np.asarray(X)
        self.threads = threads
        if self.fast is not None and not self.checked:
            self._check(X, threads)
        if self.fast is None or not len(X):
            return self.booster.predict(X, pred_contrib=True, num_threads=threads)
        try:
            return self._fast(X)
        except Exception:  # noqa: BLE001 - numba missing or failing: the reference path is always there
            self.fast = None
            return self.booster.predict(X, pred_contrib=True, num_threads=threads)

    def _check(self, X: np.ndarray, threads: int) -> None:
        """Compare with `pred_contrib` on the first rows; any difference above 1e-9 disables the fast path."""
        self.checked = True
        sample = X[:CHECK_ROWS] if len(X) else np.zeros((1, self.booster.num_feature()), dtype=np.float32)
        expected = self.booster.predict(sample, pred_contrib=True, num_threads=threads)
        self.base = float(expected[0, -1])
        try:
            got = self._fast(sample)
        except Exception:  # noqa: BLE001
            self.fast = None
            return
        if not np.allclose(got, expected, rtol=0, atol=CHECK_TOL):
            self.fast = None
