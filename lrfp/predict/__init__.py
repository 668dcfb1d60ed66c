"""`lrfp predict` and `lrfp export`: use a checkpoint written by `lrfp bench` on crops, videos and folders."""
