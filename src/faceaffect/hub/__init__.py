"""Weight files: verified download and cache, our safetensors format, safe import of published pickles.

Importing this package needs neither torch nor timm; the readers import torch when called.

>>> from faceaffect.hub import fetch, default_cache_dir
"""

from __future__ import annotations

from faceaffect.core.errors import (
    CheckpointError,
    ChecksumMismatchError,
    DownloadTooLargeError,
    HTTPDownloadError,
    NetworkError,
    UnsafeCheckpointError,
    WeightsError,
    WeightsNotCachedError,
)
from faceaffect.hub.cache import (
    cache_path,
    default_cache_dir,
    fetch,
    git_sha1_file,
    hash_file,
    is_offline,
    sha256_file,
    verify,
)
from faceaffect.hub.model_folder import (
    is_pretrained_dir,
    load_pretrained_files,
    read_config,
    read_safetensors,
    save_pretrained,
    write_config,
)
from faceaffect.hub.safe_pickle import read_module_state_dict, read_state_dict

__all__ = [
    "CheckpointError",
    "ChecksumMismatchError",
    "DownloadTooLargeError",
    "HTTPDownloadError",
    "NetworkError",
    "UnsafeCheckpointError",
    "WeightsError",
    "WeightsNotCachedError",
    "cache_path",
    "default_cache_dir",
    "fetch",
    "git_sha1_file",
    "hash_file",
    "is_offline",
    "is_pretrained_dir",
    "load_pretrained_files",
    "read_config",
    "read_module_state_dict",
    "read_safetensors",
    "read_state_dict",
    "save_pretrained",
    "sha256_file",
    "verify",
    "write_config",
]
