"""ATLAS notify: email, SMS and in-app notifications."""
