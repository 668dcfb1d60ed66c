"""`lrfp stats`: what is in the store."""

from __future__ import annotations

from lrfp.cli.options import DEFAULT_DATA_DIR, DataDir, JsonOut


def stats(data_dir: DataDir = DEFAULT_DATA_DIR, as_json: JsonOut = False) -> None:
    """Show crops per source and label, labeled/unlabeled, splits, face sizes and source statuses.

    With --json, one object with the keys crops, labels, splits, sources (and more).

    Example:
      lrfp stats --json
    """
    from lrfp.cli.console import out
    from lrfp.cli.tables import stats_tables
    from lrfp.stats import collect_stats, stats_json
    from lrfp.store import open_store

    with open_store(data_dir, create=False, read_only=True) as store:
        result = collect_stats(store)
    if as_json:
        print(stats_json(result))
    else:
        for table in stats_tables(result):
            out.print(table)
