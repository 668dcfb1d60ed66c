#!/usr/bin/env bash
# Set up lrfp in .venv and run its main job on a manifest: detector models, fetch, and what is in the store.
# Usage: bash scripts/quickstart.sh [MANIFEST] [extra `lrfp fetch` options]
# Default manifest: manifests/sample.csv (two short public clips, ~1-2 minutes on a laptop).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
manifest=${1:-manifests/sample.csv}
shift || true
export LRFP_DATA_DIR=${LRFP_DATA_DIR:-lrfp-data}
.venv/bin/lrfp models pull
set +e
.venv/bin/lrfp fetch "$manifest" --downscale "$@"
rc=$?
set -e
.venv/bin/lrfp stats
unlabeled=$(.venv/bin/lrfp stats --json | .venv/bin/python -c 'import json, sys; print(json.load(sys.stdin)["unlabeled"])')
if [ "$unlabeled" -gt 0 ]; then  # next steps only when there is something to label
cat <<'NEXT'

Next steps (all in .venv/bin):
  lrfp label                      # label the crops by keyboard: m with mask, n without, x not a face
  lrfp split                      # grouped by face track, stratified, seeded: 80/4/16
  lrfp publish --out dist/lr-fp   # Hub layout + dataset card; add --repo-id USER/NAME to push
  lrfp bench --all --protocol quick
NEXT
else
  echo "No crops to label yet: see the reasons above, then rerun this script."
fi
exit $rc
