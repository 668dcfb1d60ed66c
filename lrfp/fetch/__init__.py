"""`lrfp fetch`: video URLs -> frames -> faces -> crops with provenance.

One job a module: `config` (FetchConfig, VideoStatus, the resolution rule), `download` (yt-dlp), `frames`
(OpenCV decode and sampling), `detect`/`models` (face detector), `track`, `crop`, `writer` (the crop writer
thread), `video` (one video end to end), `pool` (worker processes), `pipeline` (a manifest: plan, run, Ctrl-C),
`results` (what a run reports). The public API is re-exported here; importing it loads no heavy library.
"""

from lrfp.fetch.config import DONE, FAILED, FetchConfig, VideoStatus, lines, too_high_res
from lrfp.fetch.download import DownloadOptions
from lrfp.fetch.pipeline import fetch_manifest, plan
from lrfp.fetch.results import FetchEvent, FetchResult, VideoResult
from lrfp.fetch.video import VideoJob, fetch_video, process_video_file, run_frames

__all__ = [
    "DONE", "FAILED", "DownloadOptions", "FetchConfig", "FetchEvent", "FetchResult", "VideoJob", "VideoResult",
    "VideoStatus", "fetch_manifest", "fetch_video", "lines", "plan", "process_video_file", "run_frames", "too_high_res",
]
