"""One module per sink kind behind the Sink interface."""
