"""MiniLM-L6 sentence embeddings: energy per sentence of lower-precision and trimmed-padding
variants against fp32, at a minimum cosine similarity of 0.99 to the fp32 embeddings.

256 generated sentences (greenai.demo.sentences), batches of 32 sorted by length and
padded to 64 tokens (the naive pipeline). Every candidate is measured in interleaved
rounds under one tracked run (greenai.optimize.search); the provenance column says
whether the energy was measured by a counter or estimated by the CPU model.

    .venv/bin/python benchmarks/optimize_minilm.py [--repeats 5]
"""

from __future__ import annotations

import json
import time

import torch

from _harness import RESULTS_DIR, parser
from greenai.demo.minilm import minilm_task
from greenai.optimize.plans import parse_pipeline
from greenai.optimize.search import optimize

RESULTS = RESULTS_DIR / "optimize_minilm.json"
PLAN = (
    "int8-dynamic",
    "int8-dynamic=perchannel",
    "bf16-autocast",
    "bf16",
    "trim-padding",
    "trim-padding+int8-dynamic",
    "trim-padding+bf16-autocast",
    "trim-padding+bf16",
    "threads=1",
    "trim-padding+bf16+threads=1",
)
MIN_COSINE = 0.99


def main() -> None:
    ap = parser(__doc__, paragraph=True)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    t0 = time.time()
    task = minilm_task(n_sentences=256, batch_size=32)
    study = optimize(
        task,
        [parse_pipeline(p) for p in PLAN],
        min_quality=MIN_COSINE,
        repeats=args.repeats,
        name="bench-minilm-optimize",
        store=False,
    )
    rows = []
    for o in study.outcomes:
        m = o.measurement
        rows.append(
            {
                "name": o.name,
                "status": o.status,
                "reason": o.reason,
                "min_cosine": o.quality,
                "energy_per_sentence_j": m.energy_per_sample_j if m else None,
                "time_per_sentence_s": m.time_per_sample_s if m else None,
                "rel_uncertainty": m.rel_uncertainty if m else None,
                "rel_spread": m.rel_spread if m else None,
                "provenance": m.provenance.value if m else None,
                "ratio_vs_fp32": study.energy_ratio(o.name) if m else None,
            }
        )
    rec = study.recommended
    out = {
        "torch_threads": torch.get_num_threads(),
        "sentences": 256,
        "min_cosine_bound": MIN_COSINE,
        "candidates": rows,
        "recommended": rec.name if rec else None,
        "recommended_ratio": study.energy_ratio(rec.name) if rec else None,
        "target_met": bool(rec and (study.energy_ratio(rec.name) or 0) >= 2.0 and (rec.quality or 0) >= MIN_COSINE),
        "wall_s": time.time() - t0,
    }
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(out, indent=2))
    for r in rows:
        ratio = f"{r['ratio_vs_fp32']:.2f}x" if r["ratio_vs_fp32"] else r["status"]
        energy = f"{r['energy_per_sentence_j'] * 1e3:7.2f} mJ" if r["energy_per_sentence_j"] else "      -   "
        cos = f"{r['min_cosine']:.5f}" if r["min_cosine"] is not None else "   -   "
        print(f"{r['name']:32s} {energy} {ratio:>8s}  min cos {cos}  {r['provenance'] or r['reason'][:60]}")
    print(
        f"recommended: {out['recommended']} ({(out['recommended_ratio'] or 0):.2f}x less energy per sentence); "
        f"target met: {out['target_met']}; wrote {RESULTS} in {out['wall_s']:.0f} s"
    )


if __name__ == "__main__":
    main()
