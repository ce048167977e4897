"""EventBridge: what the product tells the world, and the "release published" start path."""
