"""Crisis mode, national or per space: what stays offered and how."""
