"""Grants: a document shared with a named staff member for a request, until an expiry."""
