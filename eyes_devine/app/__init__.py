"""The application: the pipeline that orders the stages and owns the threads, the `run` service, the `watch`
feed, interface discovery and diagnostics."""
