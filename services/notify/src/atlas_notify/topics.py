"""The topics notify reads and writes, optionally behind a prefix that isolates a test run."""

EVENT_TOPICS = (
    "mobility.dossiers.v1",
    "mobility.missions.v1",
    "requests.requests.v1",
    "vault.documents.v1",
    "catalog.spaces.v1",
    "hr.mutations.v1",
)
COMMAND_TOPIC = "notify.commands.v1"
DELIVERIES_TOPIC = "notify.deliveries.v1"
