"""`python -m atlas_mobility.worker`: the faust stream app, reminders and the outbox relay.

The API process runs the same workers itself in local mode (`run_workers=True`, the default of
`make run`); in a deployment the API runs with `ATLAS_MOBILITY_RUN_WORKERS=false` and this
process runs them, the kit exposing its metrics on `ATLAS_MOBILITY_METRICS_PORT` when set.
"""

from atlas_events.service import run_worker
from atlas_mobility.app import SERVICE
from atlas_mobility.config import MobilitySettings


def main() -> None:
    run_worker(SERVICE, MobilitySettings(run_workers=True))


if __name__ == "__main__":
    main()
