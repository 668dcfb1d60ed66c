"""`lrfp import`: a labeled image folder into the store."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from lrfp import interrupts
from lrfp.cli.options import DEFAULT_DATA_DIR, DataDir


def import_(
    folder: Annotated[Path, typer.Argument(help="Folder with one subfolder per class (with_mask/, without_mask/).")],
    source: Annotated[str, typer.Option("--source", "-s", help="Name of this source in the store.")],
    class_map: Annotated[
        Optional[list[str]],
        typer.Option("--map", help="FOLDER=LABEL for other subfolder names (LABEL: with_mask, without_mask, ignore). Repeatable."),
    ] = None,
    groups: Annotated[
        Optional[Path], typer.Option("--groups", help="CSV with columns file,group_id (optional class): files of a group stay in one split.")
    ] = None,
    license: Annotated[Optional[str], typer.Option("--license", help="License of these images, recorded with the source.")] = None,
    max_side: Annotated[
        Optional[int], typer.Option("--max-side", min=8, help="Store low-resolution copies: longer side at most N px.")
    ] = None,
    redo: Annotated[bool, typer.Option(
        "--redo", help="Import files seen before again with this run's settings (e.g. another --max-side); "
        "crops that come out identical keep their labels, new crops get the labels people gave the old ones, and "
        "old crops a saved split holds are kept. A stopped redo is finished by a rerun with its settings.")] = False,
    data_dir: DataDir = DEFAULT_DATA_DIR,
    verbose: Annotated[bool, typer.Option(
        "--verbose", "-v", help="List every skipped file and why (by default the first 10; a rerun tries "
        "skipped files again).")] = False,
) -> None:
    """Import a labeled image folder: RGB PNG crops, labels from the folder names, groups, license.

    Exact duplicates (same bytes) are stored once and counted; importing the same folder again adds
    nothing; an interrupted import resumes where it stopped. The data directory is never scanned for images.

    Example:
      lrfp import ../shared/data/smfd --source smfd --groups ../shared/data/smfd/smfd_groups.csv --max-side 48
    """
    from lrfp.cli.console import err, out
    from lrfp.cli.progress import progress_bar
    from lrfp.cli.tables import import_summary
    from lrfp.import_folder import ImportConfig, import_folder, parse_class_map
    from lrfp.store import open_store
    from lrfp.store_cleanup import removed_if_left_empty

    cfg = ImportConfig(
        folder=folder, source=source, class_map=parse_class_map(class_map or []),
        groups_csv=groups, license=license, max_side=max_side, redo=redo,
    )
    cfg.check()  # before the store is created: bad options leave no empty data directory behind
    with removed_if_left_empty(data_dir), open_store(data_dir) as store, progress_bar(f"import {source}") as bar:
        result = import_folder(store, cfg, progress=bar)  # a refused folder or groups CSV leaves no empty store
        interrupts.work_done()  # stored: a signal now would only cut the summary short
    out.print(import_summary(result, every_skipped=verbose))
    if result.license_recorded is not None:
        from rich.markup import escape

        err.print(escape(f"license recorded for {source}: {result.license_recorded} (not re-imported: the crops "
                         "do not depend on it)"), soft_wrap=True)
