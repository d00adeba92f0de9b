#!/usr/bin/env bash
# make run INPUTS=file: the whole pipeline against the REAL OpenAI and Google services.
#
# Runs setup → vectorize → pipeline → upload as separate processes on one outputs tree, with the
# run inputs from the given inputs file (YAML or JSON, SPEC §3) and the credentials from the
# environment. Refuses to start, listing everything missing, unless all of these are set:
#   OPENAI_API_KEY               OpenAI API key
#   GDRIVE_CREDENTIALS_PATH      service account key JSON (the documents' folder and the
#                                final-report folder must be shared with its client_email)
#   GDRIVE_FINAL_REPORT_FOLDER   Drive folder (URL or id) that receives the final report
#   an inputs file               first argument or INPUTS
#   OUTPUTS=dir                  outputs tree (default ./outputs)
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
inputs=${1:-${INPUTS:-}}
outputs=${OUTPUTS:-$repo/outputs}

missing=()
[ -n "${OPENAI_API_KEY:-}" ] || missing+=("OPENAI_API_KEY (your OpenAI API key)")
if [ -z "${GDRIVE_CREDENTIALS_PATH:-}" ]; then
  missing+=("GDRIVE_CREDENTIALS_PATH (path of the service account key JSON)")
elif [ ! -r "$GDRIVE_CREDENTIALS_PATH" ]; then
  missing+=("GDRIVE_CREDENTIALS_PATH points at $GDRIVE_CREDENTIALS_PATH, which cannot be read")
fi
[ -n "${GDRIVE_FINAL_REPORT_FOLDER:-}" ] || missing+=("GDRIVE_FINAL_REPORT_FOLDER (URL or id of the Drive folder for the final report)")
if [ -z "$inputs" ]; then
  missing+=("an inputs file: make run INPUTS=path/to/inputs.yaml (see examples/acme/inputs.yaml)")
elif [ ! -r "$inputs" ]; then
  missing+=("the inputs file $inputs, which cannot be read")
fi
if [ ${#missing[@]} -gt 0 ]; then
  {
    echo "run: refusing to start a real run; missing:"
    printf '  - %s\n' "${missing[@]}"
    echo "run: to try the pipeline offline instead, use: make demo"
  } >&2
  exit 2
fi
for endpoint in OPENAI_BASE_URL GOOGLE_API_BASE_URL; do
  if [ -n "${!endpoint:-}" ]; then
    echo "run: note: $endpoint=${!endpoint} overrides the real service's address" >&2
  fi
done

echo "run: building the jobs (release)"
cargo build --release -p setup -p vectorize -p pipeline -p upload
bin=$repo/target/release

args=(--inputs-file "$inputs" --outputs "$outputs")
for job in setup vectorize pipeline upload; do
  echo "run: running $job against the real services"
  code=0
  "$bin/$job" "${args[@]}" || code=$?
  [ "$code" -eq 0 ] || { echo "run: $job failed (exit $code); see its error above" >&2; exit "$code"; }
done
echo "run: done; outputs in $outputs"
bash scripts/summary.sh "$outputs"
