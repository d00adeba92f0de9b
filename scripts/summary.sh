#!/usr/bin/env bash
# Prints what a finished run produced: the final report's path and size, the token and cost
# summary from its marker, and the Drive file id from the upload receipt. Used by `make demo` and
# `make run` after the four jobs.
#   scripts/summary.sh OUTPUTS_DIR     (the newest upload receipt under it names the run)
set -euo pipefail
outputs=${1:?usage: scripts/summary.sh OUTPUTS_DIR}

receipt=$(ls -t "$outputs"/*/final/upload_receipt_*.json 2>/dev/null | head -1)
[ -n "$receipt" ] || { echo "summary: no upload receipt under $outputs" >&2; exit 1; }
# Both files are pretty-printed JSON (one key per line): `field KEY <file` prints KEY's value.
field() { sed -n "s/^ *\"$1\": \"\{0,1\}\([^\",]*\)\"\{0,1\},\{0,1\}$/\1/p" | head -1; }
company_dir=$(dirname "$(dirname "$receipt")")
report=$company_dir/$(field report <"$receipt")
details=$(sed -n '/"details": {/,/}/p' "${report%.md}.ready")
detail() { field "$1" <<<"$details"; }

cat <<SUMMARY
  final report:  $report
  size:          $(wc -c <"$report" | tr -d ' ') bytes
  tokens:        $(detail input_tokens) in, $(detail output_tokens) out (model set $(detail model_set), $(detail use_cases_count) use cases)
  cost:          \$$(detail cost_usd)
  Drive file id: $(field file_id <"$receipt") (folder $(field folder_id <"$receipt"))
  receipt:       $receipt
SUMMARY
