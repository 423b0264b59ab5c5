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
  --out "$RUNS/base" --n-layer 3 --n-embd 192 --n-head 3 --n-positions 128 \
  --max-steps 100 --batch-size 16 --lr 1e-3 --warmup-steps 10 --save-steps 50 --threads 2
# 5. Control-token training on the candidates' own tweets and labels, in five runs of one
#    cosine schedule each (run as CPU time became available: 443 + 500 + 800 + 1500 steps, then
#    the fifth run was stopped at its checkpoint-750 when time ran out; about 9 epochs in all).
$T --seed 42 contextual --base "$RUNS/base" --train "$RUNS/data/train.jsonl" --validation "$RUNS/data/validation.jsonl" \
  --out "$RUNS/contextual" --field-dropout 0.3 --epochs 1 --batch-size 16 --lr 1e-3 --warmup-steps 20 --save-steps 100 --threads 2
$T --seed 43 contextual --base "$RUNS/contextual" --train "$RUNS/data/train.jsonl" --validation "$RUNS/data/validation.jsonl" \
  --out "$RUNS/contextual2" --field-dropout 0.3 --max-steps 500 --batch-size 16 --lr 1e-3 --warmup-steps 10 --save-steps 100 --threads 2
$T --seed 44 contextual --base "$RUNS/contextual2" --train "$RUNS/data/train.jsonl" --validation "$RUNS/data/validation.jsonl" \
  --out "$RUNS/contextual3" --field-dropout 0.3 --max-steps 800 --batch-size 16 --lr 1e-3 --warmup-steps 10 --save-steps 200 --threads 2
$T --seed 45 contextual --base "$RUNS/contextual3" --train "$RUNS/data/train.jsonl" --validation "$RUNS/data/validation.jsonl" \
  --out "$RUNS/contextual4" --field-dropout 0.3 --max-steps 1500 --batch-size 16 --lr 1e-3 --warmup-steps 10 --save-steps 250 --threads 2
$T --seed 46 contextual --base "$RUNS/contextual4" --train "$RUNS/data/train.jsonl" --validation "$RUNS/data/validation.jsonl" \
  --out "$RUNS/contextual5" --field-dropout 0.3 --max-steps 1500 --batch-size 16 --lr 1e-3 --warmup-steps 10 --save-steps 250 --threads 2 &
TRAIN=$!; until [ -f "$RUNS/contextual5/checkpoint-750/model.safetensors" ]; do sleep 5; done; sleep 5; kill $TRAIN
# 6. Held-out evaluation (prompts from the validation split) and the exported folder.
$T evaluate --model "$RUNS/contextual5/checkpoint-750" --train "$RUNS/data/train.jsonl" --validation "$RUNS/data/validation.jsonl" \
  --out docs/demo-eval --samples 300 --sentiment lexicon --threads 2 --candidates 8
$T export --model "$RUNS/contextual5/checkpoint-750" --out models/demo --kind controlled --name "Demo: candidatos presidenciales 2017" \
  --data-stats "$RUNS/data/stats.json" --evaluation docs/demo-eval/metrics.json --commands training/recipes/demo.sh
