"""Product catalogue and rating engine: catalogue loading, single-event quotes, set-based period rating."""
