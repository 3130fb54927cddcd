"""Corpus runs: ``faceaffect batch``. Analyse (or extract the features of) thousands of videos, images and
folders of images on this machine's cores or on a Ray cluster: one table per input, a manifest of every
input's status, resumable, and one bad input (or a lost worker) never stops the rest.

>>> from faceaffect.batch import Job, PoolOptions, run_batch
>>> report = run_batch(["clips/"], "out/", Job("out/"), PoolOptions(engine="ray"))  # doctest: +SKIP
"""

from faceaffect.batch.driver import BatchReport, PoolOptions, run_batch
from faceaffect.batch.manifest import Record
from faceaffect.batch.worker import Job, Outputs

__all__ = ["BatchReport", "Job", "Outputs", "PoolOptions", "Record", "run_batch"]
