"""Training: from raw tweets to the thesis's models (separate CLI; the bot never imports it)."""
