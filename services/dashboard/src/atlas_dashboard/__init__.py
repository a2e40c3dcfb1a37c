"""The ATLAS ops dashboard: a live projection of the platform's topics, as a page and as JSON.

Arrivals per space for the next months with their case status, request backlog and SLA
compliance, notification delivery health, consumer lag and dead-letter queues, crisis mode.
"""
