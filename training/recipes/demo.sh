#!/usr/bin/env bash
# The demo model (models/demo): every command, in order, as it was run. See docs/demo-model.md.
# Usage: bash training/recipes/demo.sh [DATA] [RUNS]   (defaults below; ~45 min on 2 CPU cores)
set -euo pipefail
DATA=${1:-../shared/data/elecciones2017}
RUNS=${2:-runs/demo}
T="politico-train --seed 42"
# 1. Candidates' tweets, cleaned and annotated, with a fixed train/validation split.
$T prepare --tweets "$DATA/candidatos.csv" --authors "$DATA/autores.csv" --out "$RUNS/data" --sentiment lexicon --entities heuristic
# 2. The public's tweets about them, cleaned only (no labels): more text for tokenizer and base model.
$T prepare --tweets "$DATA/sobre_candidatos.csv" --out "$RUNS/public"
# 3. Byte-level BPE on all the tweets (the candidates' validation split left out).
$T tokenizer --corpus "$RUNS/data/corpus.txt" "$RUNS/public/corpus.txt" --out "$RUNS/tokenizer" --vocab-size 4096
# 4. A small GPT-2 from scratch on the same tweets.
$T pretrain --tokenizer "$RUNS/tokenizer" --corpus "$RUNS/data/corpus.txt" "$RUNS/public/corpus.txt" \
  --out "$RUNS/base" --n-layer 3 --n-embd 192 --n-head 3 --n-positions 128 \
  --max-steps 100 --batch-size 16 --lr 1e-3 --warmup-steps 10 --save-steps 50 --threads 2
# 5. Control-token training on the candidates' own tweets and labels.
$T contextual --base "$RUNS/base" --train "$RUNS/data/train.jsonl" --validation "$RUNS/data/validation.jsonl" \
  --out "$RUNS/contextual" --field-dropout 0.3 \
  --epochs 1 --batch-size 16 --lr 1e-3 --warmup-steps 20 --save-steps 100 --threads 2
