#!/usr/bin/env bash
# Checks the compose files and the GitHub workflows against their published schemas, with
# check-jsonschema's built-in copies (installed into a throwaway venv).
set -euo pipefail
cd "$(dirname "$0")/.."
venv=$(mktemp -d)/venv
trap 'rm -rf "$(dirname "$venv")"' EXIT
python3 -m venv "$venv"
"$venv/bin/pip" install -q check-jsonschema
"$venv/bin/check-jsonschema" --builtin-schema vendor.github-workflows .github/workflows/*.yml
"$venv/bin/check-jsonschema" --builtin-schema vendor.compose-spec docker/compose.yaml docker/compose.paperspace.yaml
echo "lint-workflows: compose files and GitHub workflows match their schemas"
