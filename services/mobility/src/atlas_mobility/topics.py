"""The topics mobility reads and writes, optionally behind a prefix that isolates a run."""

from dataclasses import dataclass

from atlas_events.registry import TopicRegistry, prefixed_registry
from atlas_events.schemas._base import CaseKind

CASE_KINDS: tuple[CaseKind, ...] = ("logement", "scolarite", "demenagement")


@dataclass(frozen=True)
class Topics:
    """Names of the topics this service uses, under one prefix."""

    prefix: str = ""

    @property
    def hr(self) -> str:
        return f"{self.prefix}hr.mutations.v1"

    @property
    def missions(self) -> str:
        return f"{self.prefix}hr.missions.v1"

    @property
    def spaces(self) -> str:
        return f"{self.prefix}catalog.spaces.v1"

    @property
    def requests(self) -> str:
        return f"{self.prefix}requests.requests.v1"

    @property
    def commands(self) -> str:
        return f"{self.prefix}requests.commands.v1"

    @property
    def dossiers(self) -> str:
        return f"{self.prefix}mobility.dossiers.v1"

    def handler(self, kind: str) -> str:
        return f"{self.prefix}mobility.handlers.{kind}.v1"

    @property
    def registry(self) -> TopicRegistry:
        return prefixed_registry(self.prefix)
