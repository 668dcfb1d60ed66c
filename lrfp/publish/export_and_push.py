"""The `lrfp publish` sequence: check the push can work, export the folder, push it."""

from __future__ import annotations

from lrfp.events import ProgressCallback
from lrfp.publish.export import PublishConfig, PublishResult, export_dataset
from lrfp.publish.push import PushConfig, check_ready, push_to_hub
from lrfp.store import Store


def publish_dataset(
    store: Store, cfg: PublishConfig, push: PushConfig | None = None,
    progress: ProgressCallback | None = None,
) -> PublishResult:
    """Export the split to `cfg.out`, then upload it when `push` is given.

    Repo id, token and network are checked before the export, so a push that cannot work fails
    in seconds and writes nothing; a bad `cfg` (UsageError) fails before any of that.
    """
    cfg.check()
    token = check_ready(push) if push is not None else None
    result = export_dataset(store, cfg, progress)
    if push is not None:
        result.url = push_to_hub(result.out, push, token=token)
    return result
