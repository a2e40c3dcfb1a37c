"""Per-runtime objects the endpoints and workers share: settings, policy, dispatcher."""

from atlas_events.service import Runtime
from atlas_notify.config import NotifySettings
from atlas_notify.dispatch.dispatcher import Dispatcher
from atlas_notify.notifications.service import NotifyPolicy
from atlas_notify.preferences.policy import QuietHours


def settings_of(runtime: Runtime) -> NotifySettings:
    settings = runtime.settings
    assert isinstance(settings, NotifySettings)
    return settings


def policy_of(runtime: Runtime) -> NotifyPolicy:
    """Read the outbox at each use: start-up may swap it for the prefixed topics' one."""
    settings = settings_of(runtime)
    return NotifyPolicy(
        outbox=runtime.outbox,
        quiet_hours=QuietHours(
            settings.quiet_hours_start, settings.quiet_hours_end, settings.timezone
        ),
    )


def dispatcher_of(runtime: Runtime) -> Dispatcher:
    """The runtime's dispatcher: the worker loop and the ops endpoints share it."""
    return runtime.extension(_build_dispatcher)


def _build_dispatcher(runtime: Runtime) -> Dispatcher:
    return Dispatcher(runtime.db, settings_of(runtime), lambda: runtime.outbox)
