"""ATLAS spaces, the communes they cover, and resolving a commune to its space."""
