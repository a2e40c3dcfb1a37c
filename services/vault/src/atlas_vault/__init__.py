"""ATLAS vault: the digital safe."""
