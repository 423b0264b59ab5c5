#!/usr/bin/env bash
# The demo model (models/demo): every command, in order, as it was run. See docs/demo-model.md.
# Usage: bash training/recipes/demo.sh [DATA] [RUNS]
# Intermediate artefacts go to RUNS (git-ignored); only the exported folder is committed.
set -euo pipefail
DATA=${1:-../shared/data/elecciones2017}
RUNS=${2:-runs/demo}
T="politico-train"
# 1. Candidates' tweets, cleaned and annotated, with a fixed train/validation split.
$T prepare --tweets "$DATA/candidatos.csv" --authors "$DATA/autores.csv" --out "$RUNS/data" --sentiment lexicon --entities heuristic
# 2. The public's tweets about them, cleaned only (no labels): more text for tokenizer and base model.
$T prepare --tweets "$DATA/sobre_candidatos.csv" --out "$RUNS/public"
# 3. Byte-level BPE on all the tweets (the candidates' validation split left out).
$T tokenizer --corpus "$RUNS/data/corpus.txt" "$RUNS/public/corpus.txt" --out "$RUNS/tokenizer" --vocab-size 4096
# 4. A small GPT-2 from scratch on the same tweets.
$T --seed 42 pretrain --tokenizer "$RUNS/tokenizer" --corpus "$RUNS/data/corpus.txt" "$RUNS/public/corpus.txt" \
  --out "$RUNS/base" --n-layer 4 --n-embd 256 --n-head 4 --n-positions 128 \
  --max-steps 1000 --batch-size 16 --lr 1e-3 --warmup-steps 50 --save-steps 500 --threads 2
# 5. Control-token training on the candidates' own tweets and labels (one cosine schedule;
#    field dropout so that the bot's short prompts, one topic and a few labels, are in distribution).
$T --seed 42 contextual --base "$RUNS/base" --train "$RUNS/data/train.jsonl" --validation "$RUNS/data/validation.jsonl" \
  --out "$RUNS/contextual" --field-dropout 0.3 --max-steps 7000 --batch-size 16 --lr 1e-3 --warmup-steps 100 \
  --save-steps 1000 --save-total-limit 8 --threads 2
# 6. Held-out evaluation (prompts from the validation split) and the exported folder.
$T evaluate --model "$RUNS/contextual" --train "$RUNS/data/train.jsonl" --validation "$RUNS/data/validation.jsonl" \
  --out docs/demo-eval --samples 300 --sentiment lexicon --threads 2 --candidates 8
$T export --model "$RUNS/contextual" --out models/demo --kind controlled --name "Demo: candidatos presidenciales 2017" \
  --data-stats "$RUNS/data/stats.json" --evaluation docs/demo-eval/metrics.json --commands training/recipes/demo.sh
