"""A space's view of its queue: staff roster, KPIs and the CSV export."""
