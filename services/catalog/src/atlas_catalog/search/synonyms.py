"""Words users say for the same need, so a query finds prestations written with the others."""

from __future__ import annotations

SYNONYM_GROUPS: tuple[tuple[str, ...], ...] = (
    ("crèche", "garde d'enfants", "mode de garde", "petite enfance", "halte-garderie", "nounou"),
    ("assistante maternelle", "nounou", "nourrice"),
    ("déménagement", "mutation", "changement de résidence"),
    ("mutation", "mobilité", "nouvelle affectation"),
    ("solde", "salaire", "paye", "rémunération"),
    ("impôts", "impôt", "fiscalité", "fiscal", "déclaration de revenus"),
    ("logement", "appartement", "maison", "location", "loyer"),
    ("hébergement", "chambre", "logement provisoire"),
    ("vacances", "séjour", "colonie", "congés"),
    ("opex", "opération extérieure", "mission", "déploiement", "projection"),
    ("psychologue", "soutien psychologique", "écoute", "stress post-traumatique"),
    ("conjoint", "époux", "épouse", "compagnon", "compagne", "partenaire"),
    ("retraite", "pension"),
    ("habillement", "uniforme", "tenue", "paquetage", "treillis"),
    ("caf", "allocations familiales", "prestations familiales"),
    ("école", "scolarité", "scolarisation", "inscription scolaire"),
    ("ancien combattant", "vétéran", "onac"),
    ("blessé", "blessure"),
    ("emploi", "travail", "job", "embauche"),
    ("médecin", "docteur", "consultation", "soins"),
    ("covid", "épidémie", "confinement", "pandémie"),
    ("chômage", "france travail", "pôle emploi"),
    ("voiture", "véhicule", "automobile"),
)
"""Each group lists phrases that mean the same for a search; every one finds the others."""

SYNONYM_WEIGHT = 0.6
"""How much a match through a synonym counts against a match of the words typed."""
