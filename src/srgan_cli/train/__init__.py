"""Training (``srgan train``): data pipeline, networks, loop, checkpoints."""
