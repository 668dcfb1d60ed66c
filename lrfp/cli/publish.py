"""`lrfp publish`: the dataset in Hugging Face Hub layout, and its push."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from lrfp import interrupts
from lrfp.cli.options import DEFAULT_DATA_DIR, DataDir, SplitName


def publish(
    out: Annotated[
        Optional[Path], typer.Option("--out", "-o", file_okay=False, help="Folder to write (default: DATA_DIR/hub).")
    ] = None,
    split: SplitName = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace README.md and data/ in a non-empty --out (other files stay).")] = False,
    annotations_only: Annotated[
        bool, typer.Option("--annotations-only", help="No pixels: URLs, times, boxes and labels, to rebuild with `lrfp fetch`.")
    ] = False,
    repo_id: Annotated[
        Optional[str], typer.Option("--repo-id", help="Also push to this Hub dataset repo, USER/NAME (token: HF_TOKEN or `hf auth login`).")
    ] = None,
    private: Annotated[bool, typer.Option("--private", help="Create the Hub repo private.")] = False,
    gated: Annotated[bool, typer.Option("--gated", help="Gate the Hub repo: users must accept its terms to download.")] = False,
    name: Annotated[str, typer.Option("--pretty-name", help="Dataset title in the card.")] = "Low-Res Faces in Peru (lrfp)",
    data_dir: DataDir = DEFAULT_DATA_DIR,
) -> None:
    """Write the split dataset as Hub parquet shards + a dataset card, and optionally push it.

    Images are embedded as PNG bytes; the card (README.md) lists sources and licenses, detector,
    sampling, labeling, the split and its leakage audit, counts, uses and privacy. Sources with an
    unknown license are refused unless --annotations-only.

    Example:
      lrfp publish --out dist/lr-fp --repo-id jdoe/lr-fp --private
    """
    from lrfp.cli.console import out as console
    from lrfp.cli.progress import progress_bar
    from lrfp.errors import UsageError
    from lrfp.publish import PublishConfig, PushConfig, publish_dataset
    from lrfp.store import open_store

    if (private or gated) and not repo_id:
        raise UsageError("--private and --gated need --repo-id USER/NAME")
    cfg = PublishConfig(
        out=out if out is not None else data_dir / "hub", split=split, overwrite=overwrite,
        annotations_only=annotations_only, pretty_name=name,
    )
    push = PushConfig(repo_id=repo_id, private=private, gated=gated) if repo_id else None
    with open_store(data_dir, create=False, read_only=True) as store, progress_bar("publish") as bar:
        result = publish_dataset(store, cfg, push, progress=bar)
        interrupts.work_done()  # stored: a signal now would only cut the summary short
    counts = ", ".join(f"{s} {sum(c.values())}" for s, c in result.counts.items() if sum(c.values()))
    console.print(
        f"Published split [bold]{result.split}[/bold]: {result.total} crops ({counts})"
        f"{' as annotations only' if result.annotations_only else ''} to {result.out}"
    )
    for reason, n in result.left_out.items():
        console.print(f"  left out: {n} crops {reason}")
    if result.url:
        console.print(f"Pushed to {result.url}")
