#!/usr/bin/env bash
# Checks the images (make images first) as they will run in production: size budget, non-root
# user, no shell (read from the image's file list), --help inside the container (jobs and
# webhook); the offline Compose replay on one shared tree and with Paperspace-style per-job
# volumes (each job writing only its own), verifying every marker; and every job's --dry-run
# inside its container on the replayed tree.
set -euo pipefail
cd "$(dirname "$0")/.."
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
budget=$((10 * 1024 * 1024))
fail() { echo "test-images: FAILED: $*" >&2; exit 1; }
passed=0

# The image's whole filesystem, as a list of paths: a shell would show up here whether or not
# `docker run` could start it.
image_files() {
  local container files
  container=$(docker create "$1" /none) || return 1
  files=$(docker export "$container" | tar -t) || { docker rm "$container" >/dev/null; return 1; }
  docker rm "$container" >/dev/null
  printf '%s\n' "$files"
}

# The four jobs take the binary's path as their command (as the workflow specs give it); the
# webhook image has it as its entrypoint.
for name in setup vectorize pipeline upload webhook; do
  image=agent-readiness/$name:$version
  size=$(docker image inspect --format '{{.Size}}' "$image")
  [ "$size" -le "$budget" ] || fail "$image is $size bytes, over the 10 MB budget"
  user=$(docker image inspect --format '{{.Config.User}}' "$image")
  [ "$user" = "65532:65532" ] || fail "$image runs as '$user', not 65532:65532"
  files=$(image_files "$image") || fail "cannot list the files of $image"
  grep -q "usr/local/bin/$name$" <<<"$files" || fail "$image has no /usr/local/bin/$name"
  if grep -Eq '(^|/)(sh|bash|dash|ash|busybox)$' <<<"$files"; then fail "$image has a shell"; fi
  if [ "$name" = webhook ]; then
    help=$(docker run --rm "$image" --help) || fail "$name --help inside the container"
    grep -q -- '--listen' <<<"$help" || fail "$name --help does not describe --listen"
  else
    help=$(docker run --rm "$image" "$name" --help) || fail "$name --help inside the container"
    grep -q -- '--dry-run' <<<"$help" || fail "$name --help does not offer --dry-run"
  fi
  echo "ok: $image ($((size / 1024)) KiB, user $user, no shell, --help works)"
  passed=$((passed + 1))
done

# Every job's --dry-run inside its container, on a tree where its upstream stages exist (the
# offline replay's), with the replay's environment: it must succeed and change nothing.
dry_runs() {
  local out=$1 before after
  before=$(cd "$out" && find . -type f -print0 | sort -z | xargs -0 sha256sum)
  for job in setup vectorize pipeline upload; do
    docker run --rm --env-file "$out/.keys/replay.env" -e INPUTS_FILE=/run/inputs.yaml \
      -v "$out:/outputs" -v "$out/.keys:/keys:ro" -v "$PWD/examples/acme/inputs.yaml:/run/inputs.yaml:ro" \
      "agent-readiness/$job:$version" "$job" --outputs /outputs --dry-run >/dev/null \
      || fail "$job --dry-run inside the container"
  done
  after=$(cd "$out" && find . -type f -print0 | sort -z | xargs -0 sha256sum)
  [ "$before" = "$after" ] || fail "a --dry-run changed the outputs tree"
}

# Verifies every marker under a tree: each listed file exists with its size and sha256.
verify_markers() {
  python3 - "$1" <<'PY'
import hashlib, json, pathlib, sys
root = pathlib.Path(sys.argv[1])
markers = [p for p in root.rglob("*") if p.name == ".ready" or p.name.endswith(".ready")]
assert markers, f"no markers under {root}"
for marker in markers:
    data = json.loads(marker.read_text())
    company = marker.parent.parent
    for f in data["files"]:
        blob = (company / f["path"]).read_bytes()
        assert len(blob) == f["bytes"] and hashlib.sha256(blob).hexdigest() == f["sha256"], (marker, f["path"])
receipts = list(root.rglob("upload_receipt_*.json"))
assert receipts, f"no upload receipt under {root}"
print(f"verified {len(markers)} markers and {len(receipts)} receipt(s) under {root}")
PY
}

for layout in shared paperspace; do
  out=$(mktemp -d)
  OUTPUTS_DIR=$out LAYOUT=$layout bash scripts/replay.sh || fail "replay ($layout layout)"
  verify_markers "$out" || fail "markers after the $layout replay"
  if [ "$layout" = paperspace ]; then
    # Each job must have written only its own volume: nothing outside paperspace/ and the keys.
    stray=$(cd "$out" && find . -mindepth 1 -maxdepth 1 ! -name paperspace ! -name .keys)
    [ -z "$stray" ] || fail "a job wrote outside its Paperspace volume: $stray"
  fi
  echo "ok: offline replay with the $layout layout"
  passed=$((passed + 1))
  if [ "$layout" = shared ]; then
    dry_runs "$out"
    echo "ok: every job's --dry-run in its container validates and writes nothing"
    passed=$((passed + 1))
  fi
  rm -rf "$out"
done

echo "$passed passed, 0 failed"
