"""Malware scanning of deposits with ClamAV's clamd."""
