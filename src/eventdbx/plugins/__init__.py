"""The plugin pipeline: enqueuer, dispatcher, backoff, registry, installs and sinks."""
