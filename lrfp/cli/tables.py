"""Rich renderings of library results for `import`, `fetch`, `stats`, `split`, `bench` and `review-labels`
(no logic, only presentation)."""

from __future__ import annotations

from typing import Any

from rich.markup import escape
from rich.table import Table

from lrfp import SUBSETS
from lrfp.fetch.results import FetchResult
from lrfp.import_folder import ImportResult


SKIPPED_SHOWN = 10
"""Skipped files the import summary names one by one (`lrfp import --verbose`: all of them)."""


def import_summary(r: ImportResult, every_skipped: bool = False) -> Table:
    """What an import did; `every_skipped` names each skipped file (else the first SKIPPED_SHOWN)."""
    t = Table(title=f"import {r.source}", show_header=False, title_justify="left")
    t.add_column(style="bold")
    t.add_column(justify="right")
    t.add_row("files found", str(r.files))
    t.add_row("imported", str(r.imported) + (f"  ({', '.join(f'{k} {v}' for k, v in sorted(r.per_label.items()))})" if r.per_label else ""))
    t.add_row("exact duplicates (stored once)", str(r.duplicates))
    t.add_row("already imported before", str(r.already_imported))
    if r.resumed_redo:
        t.add_row("finished the stopped --redo", "yes (counts are the whole redo's)")
    if not r.redo and (r.replaced or r.kept_for_splits):
        t.add_row("crops an earlier --redo kept for a split, removed (none holds them now)", str(r.replaced))
        t.add_row("  still kept (a saved split holds them)", str(r.kept_for_splits))
    elif r.redo:
        t.add_row("--redo: identical, kept with labels", str(r.unchanged))
        t.add_row("--redo: old crops replaced", str(r.replaced))
        t.add_row("--redo: person labels carried to the new crops", str(r.labels_carried))
        t.add_row("--redo: old crops kept (a saved split holds them)", str(r.kept_for_splits))
    t.add_row("skipped", str(len(r.skipped)))
    for reason, n in sorted(r.skipped_reasons.items()):
        t.add_row(f"  {reason}", str(n))
    shown = r.skipped if every_skipped else r.skipped[:SKIPPED_SHOWN]
    for rel, reason in shown:
        t.add_row(f"  [dim]{escape(rel)}[/dim]", f"[dim]{escape(reason)}[/dim]")
    if len(r.skipped) > len(shown):  # skipped files are tried again by a rerun (it imports nothing twice)
        t.add_row("  [dim]...[/dim]", f"[dim]{len(r.skipped) - len(shown)} more: rerun the same command with "
                                      "--verbose to list every skipped file[/dim]")
    for rel, reason in r.not_scanned:
        t.add_row(f"not scanned: {rel}", f"[dim]{reason}[/dim]")
    if r.grouped or r.ungrouped:
        t.add_row("files with a group id", str(r.grouped))
        t.add_row("files without (their own group)", str(r.ungrouped))
    return t


def stopped_run_note(status: str) -> str:
    """What `lrfp stats` says of a source left `running` or `importing` while no such command runs."""
    cmd = "fetch" if status == "running" else "import"
    how = ("kill -9, a crash, a power cut" if cmd == "fetch" else "Ctrl-C, kill, a crash")
    return (f"left `{status}` by an `lrfp {cmd}` that stopped before it finished ({how}); no {cmd} is running on "
            f"this store now: rerun the same {cmd} to finish it (what it stored is kept)")


def stats_tables(s: dict[str, Any]) -> list[Table]:
    labels = s["labels"]
    overview = Table(title=f"store {s['data_dir']}", show_header=False, title_justify="left")
    overview.add_column(style="bold")
    overview.add_column(justify="right")
    overview.add_row("crops", str(s["crops"]))
    for k, v in labels.items():
        overview.add_row(f"  {k}", str(v))
    if s.get("kept_for_splits"):
        overview.add_row("  of them replaced by an import --redo, kept for a saved split", str(s["kept_for_splits"]))
    overview.add_row("groups (as `lrfp split` groups by track)", str(s["groups"]))
    q = s["face_px"]["shorter_side"]
    if q:
        overview.add_row("face px, shorter side (min/p25/median/p75/max)", " / ".join(f"{v:g}" for v in q.values()))
    overview.add_row("face px bands", "  ".join(f"{k}: {v}" for k, v in s["face_px"]["bands"].items()))
    if "predictions" in s:
        overview.add_row("crops with a model prediction", str(s["predictions"]["crops"]))
        overview.add_row("  predictions disagreeing with the label", str(s["predictions"]["disagree_with_label"]))
    if s.get("labels_from_suggestions"):
        overview.add_row("labels accepted from a model's suggestion", str(s["labels_from_suggestions"]))
    files = s.get("crop_files") or {}
    if files.get("problems"):
        overview.add_row("[red]crop files missing / damaged[/red]", f"{files['missing']} / {files['damaged']}")
    for cmd, who in (s.get("running_now") or {}).items():
        since = f" (pid {who['pid']}, since {who.get('started')})" if who.get("pid") else ""
        overview.add_row("running now", f"lrfp {cmd}{since}")
    dropped = s.get("fetch_dropped") or {}
    overview.add_row("fetch dropped: score under --min-score", str(dropped.get("min_score", 0)))
    overview.add_row("fetch dropped: side under --min-face", str(dropped.get("min_face", 0)))
    tables = [overview]
    if files.get("problems"):
        bad = Table(title="crop files missing or damaged (restore them from a backup, or `lrfp import ... --redo`)",
                    title_justify="left")
        for col in ("crop", "problem", "path"):
            bad.add_column(col, overflow="fold")
        for p in files["problems"][:20]:
            bad.add_row(str(p["crop_id"]), p["problem"], p["path"])
        if len(files["problems"]) > 20:
            bad.caption = f"{len(files['problems']) - 20} more in `lrfp stats --json`"
        tables.append(bad)

    src = Table(title="sources", title_justify="left")
    for col in ("name", "kind", "status", "crops", "with", "without", "unlabeled"):
        src.add_column(col, justify="right" if col not in ("name", "kind", "status") else "left", overflow="fold")
    for x in s["sources"]:
        n = x["labels"]
        src.add_row(x["name"], x["kind"], x["status"], str(x["crops"]),
                    str(n["with_mask"]), str(n["without_mask"]), str(n["unlabeled"]))
    notes = Table(show_header=False, box=None, title_justify="left", padding=(0, 1))
    notes.add_column(style="bold", no_wrap=True)
    notes.add_column(overflow="fold")
    for x in s["sources"]:
        notes.add_row(x["name"], f"license: {x['license'] or '[red]unknown[/red]'}")
        if x["error"]:
            notes.add_row("", f"[red]error:[/red] {escape(x['error'])}")
        if x.get("note"):
            notes.add_row("", f"[yellow]note:[/yellow] {escape(x['note'])}")
        if x.get("left_by_stopped_run"):
            notes.add_row("", f"[yellow]{stopped_run_note(x['status'])}[/yellow]")
    tables.extend([src, notes])

    for name, sp in s["splits"].items():
        t = Table(title=f"split {name}" + (" (last used)" if name == s.get("last_split") else ""), title_justify="left")
        classes = sorted({k for c in sp["counts"].values() for k in c})
        t.add_column("subset")
        for c in classes:
            t.add_column(c, justify="right")
        for subset in SUBSETS:
            if subset in sp["counts"]:
                t.add_row(subset, *(str(sp["counts"][subset].get(c, 0)) for c in classes))
        tables.append(t)
    if "agreement" in s:
        tables.extend(agreement_tables(s["agreement"]))
    for t in tables:
        _title_on_one_line(t)
    return tables


def _title_on_one_line(t: Table) -> None:
    """Rich wraps a title to its table's width; a long store path or a long CPU name would then break
    the title's words over lines (and tests that read it would depend on the machine)."""
    from rich.text import Text

    if t.title:
        t.min_width = max(t.min_width or 0, Text.from_markup(str(t.title)).cell_len)


def agreement_tables(a: dict[str, Any], max_listed: int = 20) -> list[Table]:
    """Label vs blind review: kappa per reviewer, the confusion matrix, the crops to look at again."""
    def num(x: float | None) -> str:
        return "n/a" if x is None else f"{x:.3f}"

    summary = Table(title="agreement (current label vs blind review)", title_justify="left")
    for col in ("reviewer", "compared", "observed", "Cohen's kappa", "disagreements"):
        summary.add_column(col, justify="left" if col == "reviewer" else "right")
    for name, r in [("all", a), *a["by_reviewer"].items()]:
        summary.add_row(name, str(r["n"]), num(r["observed"]), num(r["kappa"]), str(len(r["disagreements"])))
    if a["not_compared"]:
        summary.caption = f"{a['not_compared']} reviews not compared (a skip or no decided label on one side"
        left = a.get("suggested_left_out", 0)
        summary.caption += f", or, for {left}, a label accepted from a model's suggestion)" if left else ")"

    classes = list(a["confusion"])
    confusion = Table(title="confusion (rows: current label, columns: review)", title_justify="left")
    confusion.add_column("label")
    for c in classes:
        confusion.add_column(c, justify="right")
    confusion.add_column("agreement", justify="right")
    for c in classes:
        confusion.add_row(c, *(str(a["confusion"][c][d]) for d in classes), num(a["per_class"][c]["agreement"]))

    listed = Table(title="disagreements: look again", title_justify="left")
    for col in ("crop", "label", "by", "review", "reviewer", "path"):
        listed.add_column(col)
    for d in a["disagreements"][:max_listed]:
        listed.add_row(str(d["crop_id"]), d["label"], d["annotator"], d["review"], d["reviewer"], d["path"])
    if len(a["disagreements"]) > max_listed:
        listed.caption = f"{len(a['disagreements']) - max_listed} more in `lrfp stats --json`"
    return [summary, confusion, listed] if a["disagreements"] else [summary, confusion]


def split_tables(r: dict[str, Any]) -> list[Table]:
    """`lrfp split`: the split report (SplitResult.report) as a counts table and the leakage audit."""
    t = Table(title=f"split {r['name']} (seed {r['seed']}, grouped by {r['group_by']})", title_justify="left")
    for col in ("subset", "class", "crops", "share", "groups", "sources", "face px min/p25/med/p75/max"):
        t.add_column(col, justify="left" if col in ("subset", "class", "sources") else "right")
    for subset, s in r["subsets"].items():
        rows = [("all", s)] + list(s["classes"].items())
        for cls, c in rows:
            q = c["face_px"]
            t.add_row(
                subset if cls == "all" else "", cls, str(c["crops"]),
                f"{r['fractions'][subset]:.1%}" if cls == "all" else "", str(c["groups"]),
                ", ".join(c["sources"]), " / ".join(f"{v:g}" for v in q.values()) if q else "-",
            )
    leak = r["leakage"]
    nd = leak["near_duplicates"]
    a = Table(title="leakage audit", show_header=False, title_justify="left")
    a.add_column(style="bold")
    a.add_column()
    a.add_row("groups shared across splits", str(leak["shared_groups"]))
    a.add_row(f"near-duplicate pairs across splits (pHash <= {nd['max_distance']} bits)", str(nd["pairs"]))
    for ex in nd["examples"][:5]:
        a.add_row("", f"crop {ex['a']['crop_id']} ({ex['a']['subset']}) ~ crop {ex['b']['crop_id']} ({ex['b']['subset']}), distance {ex['distance']}")
    d = r["dedupe"]
    a.add_row("dedupe", f"{d['mode']}: {d['merged_pairs']} near-duplicate pair(s) merged groups, {d['dropped']} crop(s) dropped")
    a.add_row("groups (crops by key)", f"{r['groups']}  ({', '.join(f'{k} {v}' for k, v in r['group_keys'].items())})")
    a.add_row("groups holding both classes", str(r["mixed_label_groups"]))
    a.add_row("left out", ", ".join(f"{k} {v}" for k, v in r["excluded"].items()) or "none")
    if r["balance_dropped"]:
        a.add_row("dropped by --balance", str(r["balance_dropped"]))
    if leak["sources_in_several_splits"]:
        a.add_row("sources in several splits (by design when grouping finer than source)", ", ".join(leak["sources_in_several_splits"][:10]))
    return [t, a]


def label_issues_table(rows: list[dict[str, Any]], top: int, stored: bool = True) -> Table:
    """The first `top` crops of a review-labels ranking (most likely wrong first); `stored`: whether the ranking was
    stored (the caption then points to `lrfp label --queue suspects`, else says the rest was not kept)."""
    table = Table(title="likely label errors (lowest label quality first)", title_justify="left")
    for col, justify in (("rank", "right"), ("crop", "right"), ("given", "left"), ("model says", "left"),
                         ("p", "right"), ("quality", "right"), ("flagged", "left"), ("file", "left")):
        table.add_column(col, justify=justify)
    for r in rows[:top]:
        table.add_row(str(r["rank"]), str(r["crop_id"]), r["given_label"], r["suggested_label"],
                      f"{r['p_suggested']:.2f}", f"{r['quality']:.3f}", "yes" if r["is_issue"] else "",
                      (r.get("original") or r["path"].rsplit("/", 1)[-1])[-28:])
    if len(rows) > top and stored:
        table.caption = f"{len(rows) - top} more ranked crops in the store (lrfp label --queue suspects shows the flagged ones)"
    elif len(rows) > top:
        table.caption = f"{len(rows) - top} more ranked crops, not shown (this ranking was not stored)"
    return table


def fetch_summary(result: FetchResult) -> list[Table]:
    """The end-of-run summary: videos by status (with reasons) and what this run did."""
    by_status = Table(title="videos by status", title_justify="left")
    by_status.add_column("status")
    by_status.add_column("videos", justify="right")
    by_status.add_column("this run", justify="right")
    by_status.add_column("reasons (first ones)")
    for status, n in sorted(result.by_status.items(), key=lambda kv: (-kv[1], kv[0])):
        vids = [v for v in result.videos if v.status == status]
        ran = sum(1 for v in vids if not v.skipped)
        with_error = [v for v in vids if v.error]
        reasons = "\n".join(f"{v.name}: {_short(v.error)}" for v in with_error[:3])
        if len(with_error) > 3:
            reasons += f"\n... {len(with_error) - 3} more (lrfp stats)"
        by_status.add_row(status, str(n), str(ran), escape(reasons))

    totals = Table(title="this run", show_header=False, title_justify="left")
    totals.add_column(style="bold")
    totals.add_column(justify="right")
    skipped = sum(1 for v in result.videos if v.skipped)
    totals.add_row("videos processed / skipped", f"{len(result.videos) - skipped} / {skipped}")
    totals.add_row("frames sampled", str(int(result.total("frames_sampled"))))
    totals.add_row("faces found", str(int(result.total("faces_found"))))
    totals.add_row("dropped: score under --min-score", str(int(result.total("dropped_min_score"))))
    totals.add_row("dropped: side under --min-face", str(int(result.total("dropped_min_face"))))
    totals.add_row("face tracks", str(int(result.total("tracks"))))
    totals.add_row("crops kept (new in the store)", f"{int(result.total('crops_kept'))} ({int(result.total('crops_new'))})")
    if others := int(result.total("crops_others")):
        totals.add_row("of them already another source's (same footage)", str(others))
    removed, kept = int(result.total("crops_removed")), int(result.total("labeled_kept"))
    if removed or kept:
        totals.add_row("crops of earlier settings removed / labeled kept", f"{removed} / {kept}")
    totals.add_row("video seconds processed", f"{result.total('video_s'):.1f}")
    totals.add_row("time", f"{result.wall_s:.1f} s")
    totals.add_row("video-seconds per wall-second", f"{result.speed:.1f}" if result.speed else "-")
    if result.model is not None:
        m = result.model
        where = f"{m.weights_file} in {m.settings.weights.parent}" if m.settings.weights else m.weights_file
        totals.add_row("detector", escape(f"{m.name}, tiles {m.settings.tiles} ({where})"))
    return [by_status, totals]


def _short(text: str | None, n: int = 90) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= n else text[: n - 3] + "..."


def fetch_notes(result: FetchResult, proxy: str | None = None) -> list[str]:
    """What the user should know after the tables: videos made with other settings, an offline machine, a
    proxy that every download failed to get through."""
    notes = []
    if result.stale:
        listed = "; ".join(f"{v.name} ({describe_changes(v.changed or {})})" for v in result.stale[:5])
        more = f"; ... {len(result.stale) - 5} more" if len(result.stale) > 5 else ""
        notes.append(
            f"[yellow]{len(result.stale)} stored video(s) were made with other settings and were skipped: "
            f"{escape(listed + more)}.[/yellow] Rerun with --redo to reprocess them (labels of crops that come out "
            "identical are kept; labeled crops that no longer come out are kept too).")
    if result.offline:
        notes.append("[red]This machine seems to be offline (no DNS): every download failed to look up its host "
                     "name.[/red] Check the network connection (or --proxy), then rerun with --retry-failed (a plain rerun "
                     "skips failed rows).")
    elif proxy and result.unreachable:
        notes.append(f"[red]Every download failed to connect through --proxy {escape(proxy)}.[/red] Check that the proxy "
                     "runs, then rerun with --retry-failed (a plain rerun skips failed rows).")
    return notes


def describe_changes(changed: dict[str, tuple[Any, Any]]) -> str:
    """'every_s 0.5 -> 1, margin 0.25 -> 0.4' (None shown as 'none', a sha256 by its first 12 digits)."""
    def show(v: Any) -> str:
        if v is None:
            return "none"
        if isinstance(v, float):
            return f"{v:g}"
        text = str(v)
        return text[:12] if len(text) == 64 and all(c in "0123456789abcdef" for c in text) else text

    return ", ".join(f"{k} {show(a)} -> {show(b)}" for k, (a, b) in changed.items())


# -- bench ---------------------------------------------------------------------------------------


def bench_models_table(specs: list[Any]) -> Table:
    """The registry (`lrfp bench --list`): one row per model spec."""
    t = Table(title="registered models (lrfp bench --model NAME)", title_justify="left")
    for col in ("model", "norms", "input px thesis/quick/min", "optimizer", "weights"):
        t.add_column(col, no_wrap=True)
    t.add_column("what")
    for s in specs:
        t.add_row(s.name, ", ".join(s.norms) or "-", f"{s.input_size} / {s.quick_input_size} / {s.min_input_size}",
                  s.optimizer, "ImageNet" if s.pretrained else "scratch", s.summary)
    return t


def bench_header(meta: dict[str, Any], summary: list[dict[str, Any]]) -> str:
    """One line over the bench table (printed unwrapped: a machine name must not split a word): the protocol, the
    seeds per config (as planned; fewer where runs failed), or that no run finished, and the device."""
    done = sorted({s["seeds"] for s in summary if s["eval_set"] == "test"})
    planned = meta.get("run_seeds") or (done[-1] if done else None)
    if not done:
        seeds = "no run finished"
    elif done == [planned]:
        seeds = f"{planned} seed{'s' if planned != 1 else ''} per config"
    else:  # some cells lost seeds to failed runs (listed in the table)
        finished = str(done[0]) if len(done) == 1 else f"{done[0]}-{done[-1]}"
        seeds = f"{planned} seeds per config planned, {finished} finished"
    scratch = meta.get("from_scratch") or []
    return (f"lrfp bench: protocol {meta.get('protocol')}, {seeds}, "
            f"{meta.get('device_name')}" + (f", NO pretrained weights ({', '.join(scratch)})" if scratch else ""))


def _num(x: float | None, digits: int) -> str:
    """A number, or "-" where there is none (NaN: a ROC AUC on a test set with one class)."""
    return "-" if x is None or x != x else f"{x:.{digits}f}"


def bench_summary_table(summary: list[dict[str, Any]], rows: list[dict[str, Any]]) -> Table:
    """Test accuracy per config and budget beside the thesis's (`benchmark.report.summarize` rows), then failed runs."""
    from rich import box

    t = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    for col in ("config", "ep", "test acc", "95% CI", "loss", "AUC", "thesis acc/loss"):
        t.add_column(col, justify="left" if col == "config" else "right", no_wrap=True)
    for s in summary:
        if s["eval_set"] != "test":
            continue
        sd = f"±{100 * s['accuracy_sd']:.1f}" if s["seeds"] > 1 else ""
        th = (f"{100 * s['thesis_accuracy']:.1f}%/{s['thesis_loss']:.2f}@{s['thesis_epochs']}"
              if s.get("thesis_epochs") else "-")
        t.add_row(s["config"], str(s["epochs"]), f"{100 * s['accuracy']:.1f}%{sd}",
                  f"{100 * s['acc_ci_low']:.1f}-{100 * s['acc_ci_high']:.1f}", _num(s["loss"], 3), _num(s["roc_auc"], 3), th)
    for r in rows:
        if r.get("error"):  # the error's type here; its whole text in `bench_failures`, under the table
            t.add_row(r["config"], "-", "[red]failed[/red]", escape(r["error"].split(":", 1)[0][:40]), "", "",
                      f"seed {r['seed']}")
    return t


def bench_failures(rows: list[dict[str, Any]]) -> list[str]:
    """The failed runs in full, one line each, for under the bench table (whose cell shows only the error's type):
    "Runs that failed:" then "  <config> seed <n>: <error>", as results.md lists them; [] when none failed."""
    failed = [r for r in rows if r.get("error")]
    if not failed:
        return []
    return ["Runs that failed:"] + [f"  {r['config']} seed {r['seed']}: {r['error']}" for r in failed]
