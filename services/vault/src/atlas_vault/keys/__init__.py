"""Key-encryption-key lifecycle: rotation, rewrap, retirement."""
