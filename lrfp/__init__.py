"""lrfp: build and benchmark low-resolution face-mask datasets from street video."""

__version__ = "0.1.0"

LABELS = ("with_mask", "without_mask")
"""The two classes of the dataset, in ClassLabel order."""

UNUSABLE = "unusable"
"""Label for detector false positives and unreadable crops (key `x`)."""

SKIPPED = "skip"
"""Label event for "unsure, ask again later" (key `s`)."""

SUBSETS = ("train", "validation", "test")
"""The subsets of a split, in the order the thesis gives them (1,600 / 80 / 320)."""
