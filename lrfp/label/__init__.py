"""`lrfp label`: the keyboard-first labeling TUI (Textual); storage stays in `session`, outside the widgets."""
