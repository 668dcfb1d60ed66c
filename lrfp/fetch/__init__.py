"""`lrfp fetch`: video URLs -> frames -> faces -> crops with provenance. One stage a module; `pipeline` chains them."""
