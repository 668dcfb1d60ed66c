#!/usr/bin/env bash
# Set up lrfp in .venv and run its main job on a manifest: detector models, fetch, and what is in the store.
# Usage: bash scripts/quickstart.sh [MANIFEST] [extra `lrfp fetch` options]
# Default manifest: manifests/sample.csv (two short public clips, ~1-2 minutes on a laptop).
# Run it from any folder: a relative MANIFEST is read from there (else from this repo, as manifests/sample.csv),
# and the store goes there, into ./lrfp-data (or LRFP_DATA_DIR), where the next steps' commands look for it.
# Rerunning it tries the videos that failed last time again (--retry-failed) and skips those already done.
set -euo pipefail
caller=$PWD
repo=$(cd "$(dirname "$0")/.." && pwd)
manifest=${1:-manifests/sample.csv}
shift || true
if [[ "$manifest" != /* && ! -e "$caller/$manifest" && -e "$repo/$manifest" ]]; then
  manifest="$repo/$manifest"
fi
export LRFP_DATA_DIR=${LRFP_DATA_DIR:-lrfp-data}
bash "$repo/scripts/setup.sh"
bin="$repo/.venv/bin"
"$bin/lrfp" models pull
set +e
"$bin/lrfp" fetch "$manifest" --downscale --retry-failed "$@"
rc=$?
set -e
if ! "$bin/lrfp" stats >/dev/null 2>&1; then  # the fetch refused before it made a store (a bad manifest): said above
  exit $rc
fi
"$bin/lrfp" stats
unlabeled=$("$bin/lrfp" stats --json | "$bin/python" -c 'import json, sys; print(json.load(sys.stdin)["unlabeled"])')
if [ "$unlabeled" -gt 0 ]; then  # next steps only when there is something to label
cat <<NEXT

Next steps, from this folder (the commands are in $bin: source $bin/activate):
  lrfp label                      # label the crops by keyboard: m with mask, n without, x not a face
  lrfp split                      # grouped by face track, stratified, seeded: 80/4/16
  lrfp publish --out dist/lr-fp   # Hub layout + dataset card; add --repo-id USER/NAME to push
  lrfp bench --all --protocol quick
NEXT
else
  echo "No crops to label yet: see the reasons above, then rerun this script (it tries the failed videos again)."
fi
exit $rc
