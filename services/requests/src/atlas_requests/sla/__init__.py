"""The SLA clock: business days with French public holidays, paused while waiting for the user."""
