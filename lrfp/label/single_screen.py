"""The single view: one crop drawn large, its context in the frame, metadata and label history."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Footer, Static

from lrfp.errors import NotFoundError
from lrfp.label.halfblock import LoadedImage, context_region, load_image
from lrfp.label.session import CropInfo, LabelSession
from lrfp.label.widgets import (
    ACCEPT_KEY, LABEL_BINDINGS, UNDO_BINDINGS, SUGGESTION_STYLE, PixelImage, label_text, notice_text, progress_text,
    screen_is_live,
)


class SingleScreen(Screen):
    """Label one crop at a time; every key commits and moves on."""

    DEFAULT_CSS = """
    SingleScreen #progress { height: 1; background: $boost; }
    SingleScreen #main { height: 1fr; }
    SingleScreen #crop { width: 1fr; height: 1fr; content-align: center middle; }
    SingleScreen #side { width: 36; border-left: solid $primary; padding: 0 1; }
    SingleScreen #context { height: 10; width: 1fr; }
    SingleScreen #meta { height: 1fr; }
    SingleScreen #status { height: 1; background: $boost; }
    """

    BINDINGS = [
        *LABEL_BINDINGS,
        Binding(ACCEPT_KEY, "accept", "accept suggestion"),
        *UNDO_BINDINGS,
        Binding("left", "previous", "prev"),
        Binding("right", "next", "next"),
        Binding("g", "grid", "grid"),
        Binding("question_mark", "help", "help", key_display="?"),
        Binding("q", "app.quit", "quit"),
    ]

    def compose(self) -> ComposeResult:
        yield Static(id="progress")
        with Horizontal(id="main"):
            yield PixelImage(id="crop")
            with Vertical(id="side"):
                yield PixelImage(id="context")
                yield Static(id="meta")
        yield Static(id="status")
        yield Footer()

    @property
    def session(self) -> LabelSession:
        return self.app.session  # type: ignore[attr-defined]

    def on_mount(self) -> None:
        self.show_current()

    def on_screen_resume(self) -> None:
        self.show_current()

    def show_current(self, status: Text | str | None = None) -> None:
        """Draw the crop on screen (moving past crops removed from the store meanwhile) and `status`; what the
        session left alone since the last draw (removed crops, crops another session labeled) replaces `status`."""
        if not screen_is_live(self):
            return  # a key burst replaced this view (e.g. "nnnnng"): the grid draws now
        s = self.session
        crop = self.query_one("#crop", PixelImage)
        context = self.query_one("#context", PixelImage)
        meta = self.query_one("#meta", Static)
        info = s.current_info()
        notice = s.take_notice()
        if notice is not None:
            status = notice_text(notice)
        self.query_one("#progress", Static).update(progress_text(s), layout=False)
        if status is not None:
            self.query_one("#status", Static).update(status, layout=False)
        if info is None:
            message = s.empty_message() or "Nothing to show."
            crop.show(None, f"\n\n{message}\n\nu undoes the last label, left goes back, q quits.")
            context.show(None, "")
            meta.update("", layout=False)
            self.app.crop_drawn(None)  # type: ignore[attr-defined]
            return
        crop_id = info.id
        loaded = crop.prepared(crop_id) or load_image(info.file, shown_as=info.rel_path)
        crop.show(loaded, key=crop_id)
        context.show(*self._context_image(info))
        meta.update(self._meta_text(info, loaded), layout=False)
        self.app.crop_drawn(crop_id)  # type: ignore[attr-defined]
        self.call_after_refresh(self._prepare_next)

    def _prepare_next(self) -> None:
        """Load and draw (off screen) the crop auto-advance will most likely show next. Runs after a refresh: by
        then a key may have replaced this view, or another command removed that crop; then it does nothing."""
        s = self.session
        if not screen_is_live(self) or s.position + 1 >= len(s.ids):
            return
        next_id = s.ids[s.position + 1]
        try:
            file, rel_path = s.crop_file(next_id)
        except NotFoundError:
            return  # removed meanwhile: show_current will move past it
        self.query_one("#crop", PixelImage).prepare(next_id, load_image(file, shown_as=rel_path))

    @staticmethod
    def _context_image(info: CropInfo) -> tuple[LoadedImage | None, str]:
        if info.frame_file is None or info.box is None:
            return None, "(no frame stored for this crop)"
        frame = load_image(info.frame_file)
        if frame.image is None:
            return None, f"(frame {frame.problem})"
        return LoadedImage(context_region(frame.image, info.box, box_frame_size=info.frame_size)), ""

    def _meta_text(self, info: CropInfo, loaded: LoadedImage) -> Text:
        s = self.session
        t = Text()
        t.append(f"crop {info.id}", style="bold")
        t.append(f"  {s.position + 1}/{len(s.ids)} in this queue\n")
        t.append("now ")
        t.append_text(label_text(info.label))
        t.append("\n")
        if info.suggestion is not None:
            sug = info.suggestion
            t.append("model: " if sug.origin == "model" else "review-labels: ", style="bold")
            t.append(f"{sug.label} {sug.probability:.2f}", style=SUGGESTION_STYLE.get(sug.label, "bold"))
            t.append(f"\n{ACCEPT_KEY} accepts it", style="dim")
            if sug.origin == "review-labels":
                t.append("; the key of the label now keeps it", style="dim")
            t.append("\n")
        t.append("\n")
        t.append("source  ", style="dim")
        t.append(f"{info.source}\n")
        if info.time_s is not None:
            t.append("time    ", style="dim")
            t.append(f"{info.time_s:.2f} s" + (f" (frame {info.frame_index})" if info.frame_index is not None else "")
                     + "\n")
        t.append("face    ", style="dim")
        t.append(f"{info.face_px} px (crop {info.width}x{info.height})\n")
        if info.score is not None:
            t.append("score   ", style="dim")
            t.append(f"{info.score:.2f}\n")
        if info.box is not None:
            t.append("box     ", style="dim")
            t.append(f"{info.box[0]},{info.box[1]} {info.box[2]}x{info.box[3]}\n")
        if info.original:
            t.append("file    ", style="dim")
            t.append(f"{info.original[-28:]}\n")
        if loaded.problem:
            t.append(f"\n{loaded.problem}\n", style="bold red")
            t.append("press x to mark it unusable\n", style="red")
        t.append("\nhistory", style="bold")
        if s.cfg.review:
            t.append(" (blind: only yours)", style="dim")
        t.append("\n")
        if not info.history:
            t.append("  none\n", style="dim")
        for e in info.history[-8:]:
            t.append(f"  {e.created_at[5:16].replace('T', ' ')} ", style="dim")
            t.append(f"{e.label or 'cleared'}", style="bold")
            t.append(f" {e.annotator} {e.kind}\n", style="dim")
        return t

    # -- actions ---------------------------------------------------------------------------------

    def action_label(self, label: str) -> None:
        crop_id = self.session.current_id
        if crop_id is None:
            self.app.bell()
            return
        event_id = self.session.label_current(label)
        if event_id is None:  # left alone (removed, or labeled in another session): show_current says so
            self.show_current()
            return
        status = Text()
        status.append(" saved ", style="bold reverse")
        status.append(f" crop {crop_id} ")
        status.append_text(label_text(label))
        status.append(f"  (event {event_id}, {self.session.progress().session_labels} this session)")
        self.show_current(status)

    def action_accept(self) -> None:
        crop_id = self.session.current_id
        sug = self.session.suggestion(crop_id) if crop_id is not None else None
        event_id = self.session.accept_current()
        if event_id is None and self.session.skipped:  # left alone: show_current says why
            self.show_current()
            return
        if event_id is None:
            self.app.bell()
            self.show_current(Text(" no suggestion for this crop: label it with m / n / x ", style="bold yellow"))
            return
        status = Text()
        status.append(" accepted ", style="bold reverse")
        status.append(f" crop {crop_id} ")
        status.append_text(label_text(sug.label))
        status.append(f"  (model's suggestion, event {event_id}, {self.session.progress().session_labels} this session)")
        self.show_current(status)

    def action_undo(self) -> None:
        crop_id = self.session.undo()
        if crop_id is None and self.session.skipped:  # not undone: show_current says why
            self.show_current()
            return
        if crop_id is None:
            self.show_current(Text(" nothing to undo in this session ", style="bold yellow"))
            return
        label = self.session.state(crop_id)
        status = Text()
        status.append(" undone ", style="bold reverse")
        status.append(f" crop {crop_id} is back to ")
        status.append_text(label_text(label))
        self.show_current(status)

    def action_previous(self) -> None:
        self.session.previous()
        self.show_current("")

    def action_next(self) -> None:
        self.session.next()
        self.show_current("")

    def action_grid(self) -> None:
        self.app.switch_to_grid()  # type: ignore[attr-defined]

    def action_help(self) -> None:
        from lrfp.label.help_screen import HelpScreen

        self.app.push_screen(HelpScreen())
