"""A seeded synthetic corpus that follows the SciFact embeddings' statistics, at any size.

Documents: the SciFact doc embeddings (all-MiniLM-L6-v2, 384-d, unit norm) are clustered with
spherical k-means. A generated document picks a cluster with the real cluster frequencies and adds
to its centroid a residual whose covariance is a blend of the cluster's own residual covariance
(its shape) and the global residual covariance (its full-rank spectrum), then is L2-normalised.
So the eigen-spectrum and the cluster structure both come from the real docs.

Queries: each real query (the train split) is assigned to its nearest doc centroid; a generated
query picks a cluster with those (smoothed) frequencies and adds a residual drawn from the *query*
residuals' mean and covariance, then is normalised. Queries thus keep the real query/doc shift:
another mean, another spectrum, other cluster weights.

Arrays are cached under ``benchmarks/.cache/`` (git-ignored) keyed by size and seed. Run as a
script to generate and print how the generated statistics compare with the real ones::

    python benchmarks/synthetic.py --size 200000
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

REPO = Path(__file__).resolve().parent.parent
DATA_DIR = REPO.parent / "shared" / "data"
SCIFACT_DIR = DATA_DIR / "scifact"
CACHE_DIR = Path(__file__).resolve().parent / ".cache"

CLUSTERS = 64
# Weight of the global residual covariance in each cluster's covariance (the rest is the cluster's
# own sample covariance, which has rank < cluster size and would otherwise leave dims empty).
GLOBAL_SHARE = 0.5
# Add-one smoothing of the query cluster frequencies so every doc cluster gets some queries.
QUERY_SMOOTHING = 1.0
GENERATOR_VERSION = 1
CHUNK = 50_000


@dataclass
class SyntheticSet:
    """Generated docs (memory-mapped), test queries and training queries, all float32 unit rows."""

    docs: NDArray[np.float32]
    queries: NDArray[np.float32]
    train_queries: NDArray[np.float32]


@dataclass
class _Model:
    centroids: NDArray[np.float64]  # (C, d)
    doc_weights: NDArray[np.float64]  # (C,)
    query_weights: NDArray[np.float64]  # (C,)
    cluster_residuals: list[NDArray[np.float64]]  # per cluster (n_c, d), centred
    global_root: NDArray[np.float64]  # (d, d): L with L Lᵀ = global doc residual covariance
    query_mean: NDArray[np.float64]  # (d,)
    query_root: NDArray[np.float64]  # (d, d)


def _load_real() -> tuple[NDArray[np.float32], NDArray[np.float32], NDArray[np.float32]]:
    if not (SCIFACT_DIR / "docs.npy").exists():
        sys.exit(f"SciFact embeddings not found under {SCIFACT_DIR.relative_to(REPO.parent)}")
    docs = np.load(SCIFACT_DIR / "docs.npy")
    test_queries = np.load(SCIFACT_DIR / "queries.npy")
    train_queries = np.load(SCIFACT_DIR / "train" / "queries.npy")
    return docs, test_queries, train_queries


def _root(covariance: NDArray[np.float64]) -> NDArray[np.float64]:
    values, vectors = np.linalg.eigh((covariance + covariance.T) / 2)
    return np.asarray(vectors * np.sqrt(np.maximum(values, 0.0)), dtype=np.float64)


def _fit(docs: NDArray[np.float32], train_queries: NDArray[np.float32], seed: int) -> _Model:
    import faiss

    kmeans = faiss.Kmeans(docs.shape[1], CLUSTERS, niter=25, seed=seed, spherical=True)
    kmeans.train(docs)
    trained: NDArray[np.float32] = np.asarray(kmeans.centroids, dtype=np.float32)
    centroids = trained.astype(np.float64)
    assignment = np.argmax(docs @ trained.T, axis=1)
    doc_counts = np.bincount(assignment, minlength=CLUSTERS).astype(np.float64)
    # Each cluster's mean of the real docs (not the unit centroid), so residuals are centred.
    means = np.stack(
        [
            docs[assignment == c].mean(axis=0) if doc_counts[c] else centroids[c]
            for c in range(CLUSTERS)
        ]
    ).astype(np.float64)
    residuals = [docs[assignment == c].astype(np.float64) - means[c] for c in range(CLUSTERS)]
    all_residuals = np.concatenate(residuals)
    global_root = _root(all_residuals.T @ all_residuals / len(all_residuals))

    query_assignment = np.argmax(train_queries @ means.T.astype(np.float32), axis=1)
    query_counts = np.bincount(query_assignment, minlength=CLUSTERS) + QUERY_SMOOTHING
    query_residuals = train_queries.astype(np.float64) - means[query_assignment]
    query_mean = query_residuals.mean(axis=0)
    centred = query_residuals - query_mean
    query_root = _root(centred.T @ centred / len(centred))
    return _Model(
        centroids=means,
        doc_weights=doc_counts / doc_counts.sum(),
        query_weights=query_counts / query_counts.sum(),
        cluster_residuals=residuals,
        global_root=global_root,
        query_mean=query_mean,
        query_root=query_root,
    )


def _normalise(rows: NDArray[np.float64]) -> NDArray[np.float32]:
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    unit: NDArray[np.float32] = (rows / np.maximum(norms, 1e-12)).astype(np.float32)
    return unit


def _generate_docs(model: _Model, count: int, rng: np.random.Generator) -> NDArray[np.float32]:
    dim = model.centroids.shape[1]
    clusters = rng.choice(len(model.doc_weights), size=count, p=model.doc_weights)
    rows = model.centroids[clusters] + np.sqrt(GLOBAL_SHARE) * (
        rng.standard_normal((count, dim)) @ model.global_root.T
    )
    for cluster in np.unique(clusters):
        members = np.flatnonzero(clusters == cluster)
        residuals = model.cluster_residuals[cluster]
        if len(residuals) < 2:
            continue
        # w @ R / sqrt(n_c) has exactly the cluster's sample covariance.
        weights = rng.standard_normal((len(members), len(residuals)))
        rows[members] += np.sqrt((1.0 - GLOBAL_SHARE) / len(residuals)) * (weights @ residuals)
    return _normalise(rows)


def _generate_queries(model: _Model, count: int, rng: np.random.Generator) -> NDArray[np.float32]:
    dim = model.centroids.shape[1]
    clusters = rng.choice(len(model.query_weights), size=count, p=model.query_weights)
    rows = (
        model.centroids[clusters]
        + model.query_mean
        + rng.standard_normal((count, dim)) @ model.query_root.T
    )
    return _normalise(rows)


def _cache_key(size: int, queries: int, train_queries: int, seed: int) -> str:
    text = json.dumps(
        [GENERATOR_VERSION, CLUSTERS, GLOBAL_SHARE, size, queries, train_queries, seed]
    )
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def load_or_generate(
    size: int,
    *,
    queries: int = 1000,
    train_queries: int = 2000,
    seed: int = 0,
    cache_dir: Path = CACHE_DIR,
    verbose: bool = True,
) -> SyntheticSet:
    """Return the generated set, from the cache when present; the docs come back memory-mapped."""
    key = _cache_key(size, queries, train_queries, seed)
    folder = cache_dir / f"synthetic-{size}-{key}"
    docs_path = folder / "docs.npy"
    if not docs_path.exists():
        started = time.perf_counter()
        real_docs, _, real_train = _load_real()
        model = _fit(real_docs, real_train, seed)
        folder.mkdir(parents=True, exist_ok=True)
        rng = np.random.default_rng(seed)
        query_rows = _generate_queries(model, queries + train_queries, rng)
        partial = folder / "docs.partial.npy"
        docs = np.lib.format.open_memmap(
            partial, mode="w+", dtype=np.float32, shape=(size, model.centroids.shape[1])
        )
        for start in range(0, size, CHUNK):
            stop = min(size, start + CHUNK)
            docs[start:stop] = _generate_docs(model, stop - start, rng)
        docs.flush()
        del docs
        np.save(folder / "queries.npy", query_rows[:queries])
        np.save(folder / "train_queries.npy", query_rows[queries:])
        partial.replace(docs_path)
        if verbose:
            print(
                f"generated {size:,} docs in {time.perf_counter() - started:.1f}s -> "
                f"{folder.relative_to(REPO)}",
                file=sys.stderr,
            )
    return SyntheticSet(
        docs=np.load(docs_path, mmap_mode="r"),
        queries=np.load(folder / "queries.npy"),
        train_queries=np.load(folder / "train_queries.npy"),
    )


def _describe(
    name: str, docs: NDArray[np.float32], queries: NDArray[np.float32], sample_size: int
) -> dict[str, float]:
    # Equal sample sizes, so nearest-neighbour similarities are comparable.
    sample = docs[:sample_size]
    doc_spectrum = np.linalg.eigvalsh(np.cov(np.asarray(sample, dtype=np.float64).T))[::-1]
    query_spectrum = np.linalg.eigvalsh(np.cov(queries.astype(np.float64).T))[::-1]
    doc_mean = np.asarray(sample, dtype=np.float64).mean(axis=0)
    query_mean = queries.astype(np.float64).mean(axis=0)
    top = np.sort(queries[:200] @ np.asarray(sample).T, axis=1)[:, ::-1]
    return {
        "name": name,  # type: ignore[dict-item]
        "doc_top_eigenvalue": float(doc_spectrum[0]),
        "doc_energy_in_top_128": float(doc_spectrum[:128].sum() / doc_spectrum.sum()),
        "query_energy_in_top_128": float(query_spectrum[:128].sum() / query_spectrum.sum()),
        "doc_mean_norm": float(np.linalg.norm(doc_mean)),
        "query_mean_norm": float(np.linalg.norm(query_mean)),
        "cos_doc_mean_query_mean": float(
            doc_mean @ query_mean / np.linalg.norm(doc_mean) / np.linalg.norm(query_mean)
        ),
        "query_top1_similarity": float(top[:, 0].mean()),
        "query_top10_similarity": float(top[:, 9].mean()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    generated = load_or_generate(args.size, seed=args.seed)
    real_docs, real_queries, _ = _load_real()
    rows = [
        _describe("SciFact (real)", real_docs, real_queries, len(real_docs)),
        _describe(
            f"generated (first {len(real_docs):,} of {args.size:,})",
            generated.docs,
            generated.queries,
            len(real_docs),
        ),
    ]
    keys = [key for key in rows[0] if key != "name"]
    print("| statistic | " + " | ".join(str(row["name"]) for row in rows) + " |")
    print("| --- |" + " --- |" * len(rows))
    for key in keys:
        print(f"| {key} | " + " | ".join(f"{row[key]:.4f}" for row in rows) + " |")


if __name__ == "__main__":
    main()
