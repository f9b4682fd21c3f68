"""triad_eval: the evaluation harness and the `triad` command line."""
