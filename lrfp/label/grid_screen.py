"""The grid view: a page of small crops, labeled cell by cell or the rest of the page at once."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Container, Vertical
from textual.screen import Screen
from textual.widgets import Footer, Static

from lrfp.errors import NotFoundError
from lrfp.label.halfblock import load_image
from lrfp.label.session import LabelSession
from lrfp.label.widgets import (
    ACCEPT_KEY, LABEL_BINDINGS, UNDO_BINDINGS, PixelImage, label_text, notice_text, progress_text, screen_is_live,
    suggestion_text,
)

REMOVED_TEXT = Text(" removed from store ", style="bold black on yellow")

CELL_COLS = 20  # 18 image columns + border
CELL_ROWS = 12  # 9 image rows (18 px) + label line + border
CHROME_ROWS = 3  # progress line, status line, footer


class GridCell(Vertical):
    DEFAULT_CSS = f"""
    GridCell {{ width: {CELL_COLS}; height: {CELL_ROWS}; border: round $panel-lighten-2; }}
    GridCell.suggested {{ border: dashed $panel-lighten-2; }}
    GridCell.cursor {{ border: heavy $accent; }}
    GridCell PixelImage {{ height: 1fr; }}
    GridCell .cell-label {{ height: 1; content-align: center middle; }}
    """

    def __init__(self, crop_id: int) -> None:
        super().__init__()
        self.crop_id = crop_id

    def compose(self) -> ComposeResult:
        yield PixelImage()
        yield Static(classes="cell-label")

    def show(self, session: LabelSession) -> None:
        image = self.query_one(PixelImage)
        try:
            info = session.info(self.crop_id)
        except NotFoundError:  # another command removed it since the page was chosen
            self.mark_removed()
            return
        self.removed = False
        loaded = image.prepared(self.crop_id) or load_image(info.file, shown_as=info.rel_path)
        image.show(loaded, "missing" if loaded.problem else None, key=self.crop_id)
        self.suggestion = info.suggestion
        self.set_label(info.label, problem=loaded.problem is not None)

    def prepare(self, session: LabelSession, crop_id: int) -> None:
        """Draw, off screen, the crop this cell will most likely show on the next page (nothing if it is gone)."""
        try:
            file, rel_path = session.crop_file(crop_id)
        except NotFoundError:
            return
        self.query_one(PixelImage).prepare(crop_id, load_image(file, shown_as=rel_path))

    suggestion = None
    removed = False

    def mark_removed(self) -> None:
        """The crop is no longer in the store: say so instead of its image; keys on it write nothing."""
        self.removed, self.suggestion = True, None
        self.query_one(PixelImage).show(None, "removed")
        self.set_class(False, "suggested")
        self.query_one(".cell-label", Static).update(REMOVED_TEXT, layout=False)

    def set_label(self, label: str | None, problem: bool = False) -> None:
        """Show the cell's label; an unlabeled cell with a suggestion shows the suggestion (styled apart)."""
        t = label_text(label, short=True)
        self.set_class(label is None and self.suggestion is not None, "suggested")
        if label is None and self.suggestion is not None:
            t = suggestion_text(self.suggestion.label, self.suggestion.probability, short=True)
        if problem and label is None:
            t = Text(" file missing/corrupt ", style="bold red")
        self.query_one(".cell-label", Static).update(t, layout=False)


class GridScreen(Screen):
    """A page of crops that fits the terminal; arrows move, m/n/x/s label a cell, a the rest, enter next page."""

    DEFAULT_CSS = """
    GridScreen #progress { height: 1; background: $boost; }
    GridScreen #cells { height: 1fr; layout: grid; grid-gutter: 0 0; }
    GridScreen #status { height: 1; background: $boost; }
    """

    BINDINGS = [
        *LABEL_BINDINGS,
        Binding("a", "label_rest", "rest of page"),
        Binding(ACCEPT_KEY, "confirm_page", "confirm suggestions"),
        Binding("enter", "next_page", "next page"),
        *UNDO_BINDINGS,
        Binding("left", "move(-1, 0)", "move", show=False),
        Binding("right", "move(1, 0)", "move", show=False),
        Binding("up", "move(0, -1)", "move", show=False),
        Binding("down", "move(0, 1)", "move", show=False),
        Binding("g", "single", "single view"),
        Binding("question_mark", "help", "help", key_display="?"),
        Binding("q", "app.quit", "quit"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.page: list[int] = []
        self.cursor = 0
        self.columns = 1
        self.shape = (0, 0)
        self.last_label: str | None = None
        self._prepare_queue: list[tuple[GridCell, int]] = []

    def compose(self) -> ComposeResult:
        yield Static(id="progress")
        yield Container(id="cells")
        yield Static(id="status")
        yield Footer()

    @property
    def session(self) -> LabelSession:
        return self.app.session  # type: ignore[attr-defined]

    def page_shape(self) -> tuple[int, int]:
        """(columns, rows) of cells that fit the terminal now."""
        width, height = self.app.size
        return max(1, width // CELL_COLS), max(1, (height - CHROME_ROWS) // CELL_ROWS)

    async def on_mount(self) -> None:
        await self.load_page()

    async def on_resize(self) -> None:
        if not screen_is_live(self):
            return  # a late resize event for a view a key already replaced
        if self.page_shape() != self.shape:
            await self.load_page(keep_cursor=True)

    async def load_page(self, keep_cursor: bool = False, status: Text | str | None = None) -> None:
        if not screen_is_live(self):
            return
        cols, rows = self.page_shape()
        self.last_label = None if not keep_cursor else self.last_label
        current = self.page[self.cursor] if keep_cursor and self.page else None
        self.columns, self.shape = cols, (cols, rows)
        self.page = self.session.page(cols * rows)
        self.cursor = self.page.index(current) if current in self.page else 0
        container = self.query_one("#cells", Container)
        cells = self._cells()
        if len(cells) == len(self.page) and container.styles.grid_size_columns == cols and self.page:
            for cell, crop_id in zip(cells, self.page):  # same shape: reuse the widgets, no remount
                cell.crop_id = crop_id
        else:
            await container.remove_children()
            container.styles.grid_size_columns = cols
            cells = [GridCell(crop_id) for crop_id in self.page]
            await container.mount_all(cells)
        for cell in cells:
            cell.show(self.session)
        if not self.page:
            message = self.session.empty_message() or "Nothing to show."
            await container.mount(Static(f"\n{message}\n\nu undoes the last label, q quits."))
        self._draw_cursor()
        self.query_one("#progress", Static).update(progress_text(self.session), layout=False)
        if status is not None or self.session.skipped:
            self._status(status if status is not None else "")
        self.app.crop_drawn(self.page[0] if self.page else None)  # type: ignore[attr-defined]
        if self.page:
            ids = self.session.ids
            start = ids.index(self.page[-1]) + 1
            self._prepare_queue = list(zip(cells, ids[start:start + len(cells)]))
            self.call_after_refresh(self._prepare_step)

    def _prepare_step(self) -> None:
        """Prepare the next page one cell at a time, so that a key pressed meanwhile waits for one cell at most."""
        if not screen_is_live(self):
            self._prepare_queue = []  # a key replaced this view: its cells are gone
            return
        if self._prepare_queue:
            cell, crop_id = self._prepare_queue.pop(0)
            if cell.is_attached:
                cell.prepare(self.session, crop_id)
            self.call_later(self._prepare_step)

    def _cells(self) -> list[GridCell]:
        return list(self.query(GridCell))

    def _draw_cursor(self) -> None:
        for i, cell in enumerate(self._cells()):
            cell.set_class(i == self.cursor, "cursor")

    def _status(self, text: Text | str) -> None:
        """Show `text`, or what the session left alone since (removed crops, crops another session labeled)."""
        notice = self.session.take_notice()
        if notice is not None:
            text = notice_text(notice)
        self.query_one("#status", Static).update(text, layout=False)
        self.query_one("#progress", Static).update(progress_text(self.session), layout=False)

    # -- actions ---------------------------------------------------------------------------------

    def action_move(self, dx: int, dy: int) -> None:
        if not self.page:
            return
        target = self.cursor + dx + dy * self.columns
        self.cursor = min(max(target, 0), len(self.page) - 1)
        self._draw_cursor()

    def action_label(self, label: str) -> None:
        if not self.page:
            self.app.bell()
            return
        cells = self._cells()
        cell = cells[self.cursor]
        event_id = self.session.set_label(cell.crop_id, label)
        self.last_label = label
        if event_id is None:  # left alone: the cell shows what is there now, the status line says why
            if not self.session.exists(cell.crop_id):
                cell.mark_removed()
            else:
                cell.set_label(self.session.state(cell.crop_id))
        else:
            cell.set_label(label)
        status = Text()
        status.append(" saved ", style="bold reverse")
        status.append(f" crop {cell.crop_id} ")
        status.append_text(label_text(label))
        status.append(f"  (event {event_id})")
        self.cursor = min(self.cursor + 1, len(self.page) - 1)
        self._draw_cursor()
        self._status(status)
        self.app.crop_drawn(cell.crop_id)  # type: ignore[attr-defined]

    def action_label_rest(self) -> None:
        """Give every unlabeled cell of the page the cursor cell's label (or, if it has none, the last one typed)."""
        if not self.page:
            return
        cells = self._cells()
        label = self.session.state(cells[self.cursor].crop_id) or self.last_label
        if label is None:
            self._status(Text(" label a cell first: a copies its label to the rest of the page ",
                              style="bold yellow"))
            return
        rest = [cell for cell in cells if not cell.removed and self.session.state(cell.crop_id) is None]
        event_ids = self.session.set_labels([cell.crop_id for cell in rest], label)  # one action: u undoes all of it
        for cell, event_id in zip(rest, event_ids):
            if event_id is not None:
                cell.set_label(label)
            elif not self.session.exists(cell.crop_id):
                cell.mark_removed()
            else:
                cell.set_label(self.session.state(cell.crop_id))
        n = sum(e is not None for e in event_ids)
        status = Text()
        status.append(" saved ", style="bold reverse")
        status.append(f" {n} more crops ")
        status.append_text(label_text(label))
        status.append("  (enter: next page)")
        self._status(status)

    async def action_confirm_page(self) -> None:
        """Accept every suggestion still showing on the page (cells flipped by a key keep their label), then
        the next page."""
        if not self.page:
            self.app.bell()
            return
        n = self.session.confirm_suggestions(self.page)
        waiting = [i for i in self.page if self.session.exists(i) and self.session.state(i) is None]
        if n == 0 and waiting:
            self._status(Text(" no suggestions on this page: label the cells with m / n / x ", style="bold yellow"))
            return
        self.session.after_page(self.page)
        status = Text()
        status.append(" confirmed ", style="bold reverse")
        status.append(f" {n} suggestions" + (f"; {len(waiting)} cells without one stay unlabeled" if waiting else ""))
        await self.load_page(status=status)

    async def action_next_page(self) -> None:
        self.session.after_page(self.page)
        await self.load_page(status=Text(" next page ", style="bold reverse"))

    async def action_undo(self) -> None:
        crop_ids = self.session.undo_action()
        cells = self._cells()
        for k in self.session.skipped:  # left alone: the cell shows what the store holds now
            if k.crop_id in self.page:
                cell = cells[self.page.index(k.crop_id)]
                if self.session.exists(k.crop_id):
                    cell.set_label(self.session.state(k.crop_id))
                else:
                    cell.mark_removed()
        if not crop_ids:  # (or each crop of it was left alone: _status says why)
            self._status(Text(" nothing to undo in this session ", style="bold yellow"))
            return
        if not any(crop_id in self.page for crop_id in crop_ids):
            # e.g. a page confirmed with y: go back to it (the session's position is the undone crop's)
            await self.load_page()
        cells = self._cells()
        for crop_id in crop_ids:
            if crop_id in self.page:
                cells[self.page.index(crop_id)].set_label(self.session.state(crop_id))
        if crop_ids[0] in self.page:
            self.cursor = self.page.index(crop_ids[0])
            self._draw_cursor()
        label = self.session.state(crop_ids[0])
        status = Text()
        status.append(" undone ", style="bold reverse")
        if len(crop_ids) == 1:
            status.append(f" crop {crop_ids[0]} is back to ")
        else:
            status.append(f" {len(crop_ids)} crops are back to ")
        status.append_text(label_text(label))
        self._status(status)

    def action_single(self) -> None:
        if self.page:
            self.session.go_to(self.page[self.cursor])
        self.app.switch_to_single()  # type: ignore[attr-defined]

    def action_help(self) -> None:
        from lrfp.label.help_screen import HelpScreen

        self.app.push_screen(HelpScreen())
