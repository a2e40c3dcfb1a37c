"""The one shared library of the ATLAS platform."""
