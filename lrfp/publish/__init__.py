"""`lrfp publish`: a split as a Hugging Face Hub dataset (parquet + card), and its push.

export.py writes the folder, card.py its README.md, push.py uploads it, export_and_push.py chains them.
"""

from lrfp.publish.export import FEATURE_NAMES, PublishConfig, PublishResult, export_dataset
from lrfp.publish.push import PushConfig, push_to_hub
from lrfp.publish.export_and_push import publish_dataset

__all__ = [
    "FEATURE_NAMES", "PublishConfig", "PublishResult", "PushConfig", "export_dataset", "publish_dataset", "push_to_hub",
]
