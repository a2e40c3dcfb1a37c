"""`python -m atlas_dashboard`: the ops dashboard (page, JSON API) and its topic projection."""

from atlas_dashboard.app import SERVICE
from atlas_dashboard.config import DashboardSettings
from atlas_events.service import serve

if __name__ == "__main__":
    serve(SERVICE, DashboardSettings())
