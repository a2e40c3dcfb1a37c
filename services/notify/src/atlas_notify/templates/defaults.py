"""The templates every installation starts with (version 1), in French, one per rule."""

from atlas_notify.templates.models import TemplateCreate

_SIGNATURE = (
    "\n\n-- \nVotre espace ATLAS\n"
    "Ce message est envoyé automatiquement, merci de ne pas y répondre."
)

DEFAULT_TEMPLATES: dict[str, TemplateCreate] = {
    "mobility.mission_opened": TemplateCreate(
        category="mobility",
        description="À l'agent : son départ en mission est préparé à l'espace ATLAS du domicile.",
        variables={
            "mission_id": "OPEX-2027-000731",
            "kind": "OPEX",
            "departure_date": "01/03/2027",
            "planned_return_date": "15/07/2027",
            "space": "ATLAS de Toulon",
        },
        email_subject="Votre départ en mission : l'espace ATLAS accompagne votre famille",
        email_body=(
            "Bonjour,\n\nVotre départ en mission ({{ kind }}) du {{ departure_date }} a été reçu"
            " (référence {{ mission_id }}). L'espace {{ space }} ouvre un dossier de départ :"
            " procuration et dossier administratif, contact de la famille, dernière vérification"
            " avant le départ.\nPendant la mission, votre famille peut s'adresser à l'espace, qui"
            " fera les démarches en votre nom. Retour prévu le {{ planned_return_date }}."
            + _SIGNATURE
        ),
        sms_body=(
            "ATLAS : votre depart en mission du {{ departure_date }} est prepare a {{ space }}."
        ),
        in_app_title="Votre départ en mission est préparé",
        in_app_body=(
            "L'espace {{ space }} prépare votre départ ({{ kind }}) du {{ departure_date }}"
            " et reste le contact de votre famille."
        ),
    ),
    "mobility.mission_opened_staff": TemplateCreate(
        category="mobility",
        description="Au personnel de l'espace : un départ en mission est annoncé.",
        variables={
            "mission_id": "OPEX-2027-000731",
            "kind": "OPEX",
            "agent_id": "2019123456",
            "departure_date": "01/03/2027",
            "planned_return_date": "15/07/2027",
            "space": "ATLAS de Toulon",
        },
        email_subject="Départ en mission annoncé : {{ mission_id }}",
        email_body=(
            "Un départ en mission ({{ kind }}) est annoncé pour l'agent {{ agent_id }} le"
            " {{ departure_date }}, retour prévu le {{ planned_return_date }}. Les demandes sont"
            " dans la file de {{ space }}." + _SIGNATURE
        ),
        in_app_title="Départ en mission annoncé",
        in_app_body="Agent {{ agent_id }} : départ le {{ departure_date }} ({{ kind }}).",
    ),
    "mobility.mission_return_opened": TemplateCreate(
        category="mobility",
        description="À l'agent : son dossier de retour de mission est ouvert.",
        variables={
            "mission_id": "OPEX-2027-000731",
            "kind": "OPEX",
            "departure_date": "01/03/2027",
            "planned_return_date": "15/07/2027",
            "return_date": "14/07/2027",
            "space": "ATLAS de Toulon",
        },
        email_subject="Votre retour de mission : vos démarches à l'espace ATLAS",
        email_body=(
            "Bonjour,\n\nBon retour. L'espace {{ space }} a ouvert votre dossier de retour de"
            " mission ({{ kind }}, retour le {{ return_date }}) : formalités de retour, mise à"
            " jour de vos droits et congés de fin de mission." + _SIGNATURE
        ),
        sms_body="ATLAS : votre dossier de retour de mission est ouvert a {{ space }}.",
        in_app_title="Votre dossier de retour de mission est ouvert",
        in_app_body=(
            "Formalités de retour, droits et congés : l'espace {{ space }} vous accompagne."
        ),
    ),
    "mobility.mission_return_overdue_staff": TemplateCreate(
        category="mobility",
        description="Au personnel de l'espace : un retour de mission prévu n'a pas été signalé.",
        variables={
            "mission_id": "OPEX-2027-000731",
            "kind": "OPEX",
            "agent_id": "2019123456",
            "departure_date": "01/03/2027",
            "planned_return_date": "15/07/2027",
        },
        email_subject="Retour de mission non signalé : {{ mission_id }}",
        email_body=(
            "Le retour de l'agent {{ agent_id }} ({{ kind }}), prévu le {{ planned_return_date }},"
            " n'a pas été signalé par les RH. Une demande est ouverte dans votre file : vérifiez"
            " auprès de la famille." + _SIGNATURE
        ),
        in_app_title="Retour de mission non signalé",
        in_app_body="Agent {{ agent_id }} : retour prévu le {{ planned_return_date }} non signalé.",
    ),
    "mobility.dossier_opened": TemplateCreate(
        category="mobility",
        description="À l'agent : son dossier de mobilité est ouvert.",
        variables={
            "destination": "ATLAS de Toulon",
            "report_date": "30/08/2027",
            "mutation_id": "TERRE-2027-004211",
            "cases": "logement, scolarité",
        },
        email_subject="Votre mutation : votre dossier ATLAS est ouvert",
        email_body=(
            "Bonjour,\n\nVotre mutation {{ mutation_id }} a été reçue. L'espace {{ destination }}"
            " prépare votre arrivée du {{ report_date }}.\nDémarches ouvertes : {{ cases }}."
            + _SIGNATURE
        ),
        sms_body=(
            "ATLAS : votre dossier de mutation est ouvert a {{ destination }} "
            "(prise de poste le {{ report_date }})."
        ),
        in_app_title="Votre dossier de mobilité est ouvert",
        in_app_body=(
            "L'espace {{ destination }} prépare votre arrivée du {{ report_date }}."
            " Démarches : {{ cases }}."
        ),
    ),
    "mobility.dossier_opened_staff": TemplateCreate(
        category="mobility",
        description="À l'équipe de l'espace : une arrivée est annoncée.",
        variables={
            "agent_id": "2019123456",
            "mutation_id": "TERRE-2027-004211",
            "report_date": "30/08/2027",
            "cases": "logement, scolarité",
        },
        email_subject="Arrivée annoncée : dossier {{ mutation_id }}",
        email_body=(
            "Un dossier de mobilité est ouvert pour l'agent {{ agent_id }}"
            " (prise de poste le {{ report_date }}).\nDémarches : {{ cases }}." + _SIGNATURE
        ),
        in_app_title="Arrivée annoncée ({{ report_date }})",
        in_app_body="Dossier {{ mutation_id }}, agent {{ agent_id }} : {{ cases }}.",
    ),
    "mobility.dossier_amended": TemplateCreate(
        category="mobility",
        description="À l'agent : sa mutation a changé.",
        variables={
            "mutation_id": "TERRE-2027-004211",
            "report_date": "06/09/2027",
            "changes": "date de prise de poste",
            "destination": "ATLAS de Toulon",
        },
        email_subject="Votre mutation a été modifiée",
        email_body=(
            "Bonjour,\n\nVotre mutation {{ mutation_id }} a été modifiée ({{ changes }})."
            "\nEspace d'accueil : {{ destination }}, prise de poste le {{ report_date }}."
            + _SIGNATURE
        ),
        sms_body="ATLAS : votre mutation a ete modifiee ({{ changes }}).",
        in_app_title="Votre mutation a été modifiée",
        in_app_body="Modifications : {{ changes }}. Prise de poste le {{ report_date }}.",
    ),
    "mobility.dossier_amended_staff": TemplateCreate(
        category="mobility",
        description="À l'équipe : un dossier a changé.",
        variables={
            "agent_id": "2019123456",
            "mutation_id": "TERRE-2027-004211",
            "changes": "date de prise de poste",
            "report_date": "06/09/2027",
        },
        email_subject="Dossier {{ mutation_id }} modifié",
        email_body=(
            "Le dossier {{ mutation_id }} (agent {{ agent_id }}) a changé : {{ changes }}."
            "\nPrise de poste le {{ report_date }}." + _SIGNATURE
        ),
        in_app_title="Dossier {{ mutation_id }} modifié",
        in_app_body="Changements : {{ changes }} (prise de poste le {{ report_date }}).",
    ),
    "mobility.dossier_cancelled": TemplateCreate(
        category="mobility",
        description="À l'agent : sa mutation est annulée.",
        variables={"mutation_id": "TERRE-2027-004211", "reason": "Affectation annulée"},
        email_subject="Votre mutation est annulée",
        email_body=(
            "Bonjour,\n\nVotre mutation {{ mutation_id }} est annulée : {{ reason }}."
            "\nLes démarches engagées sont closes." + _SIGNATURE
        ),
        sms_body="ATLAS : votre mutation {{ mutation_id }} est annulee.",
        in_app_title="Votre mutation est annulée",
        in_app_body="Motif : {{ reason }}. Les démarches engagées sont closes.",
    ),
    "mobility.dossier_cancelled_staff": TemplateCreate(
        category="mobility",
        description="À l'équipe : un dossier est annulé.",
        variables={
            "agent_id": "2019123456",
            "mutation_id": "TERRE-2027-004211",
            "reason": "Affectation annulée",
        },
        email_subject="Dossier {{ mutation_id }} annulé",
        email_body="Le dossier {{ mutation_id }} (agent {{ agent_id }}) est annulé : {{ reason }}."
        + _SIGNATURE,
        in_app_title="Dossier {{ mutation_id }} annulé",
        in_app_body="Agent {{ agent_id }} : {{ reason }}.",
    ),
    "mobility.milestone_due": TemplateCreate(
        category="mobility",
        description="À l'agent : une étape de sa mobilité arrive à échéance.",
        variables={"milestone": "visite logement", "due_date": "30/07/2027", "case": "logement"},
        email_subject="Rappel : {{ milestone }} avant le {{ due_date }}",
        email_body=(
            "Bonjour,\n\nL'étape « {{ milestone }} » de votre démarche {{ case }} arrive à"
            " échéance le {{ due_date }}." + _SIGNATURE
        ),
        sms_body="ATLAS : etape {{ milestone }} a faire avant le {{ due_date }}.",
        in_app_title="Échéance : {{ milestone }}",
        in_app_body="Démarche {{ case }}, à faire avant le {{ due_date }}.",
    ),
    "requests.board_match_suggested": TemplateCreate(
        category="requests",
        description="À l’auteur d’une annonce d’entraide : une annonce proche correspond.",
        variables={"proximity": "commune"},
        in_app_title="Une annonce correspond à la vôtre",
        in_app_body=(
            "Une offre ou une demande d'entraide proche de vous ({{ proximity }}) correspond à"
            " votre annonce. Acceptez la mise en relation pour échanger vos coordonnées."
        ),
    ),
    "requests.board_contact_shared": TemplateCreate(
        category="requests",
        description="Aux deux auteurs : mise en relation acceptée, contacts visibles.",
        variables={"proximity": "commune"},
        in_app_title="Mise en relation acceptée",
        in_app_body=(
            "Les deux parties ont accepté la mise en relation ({{ proximity }}) : vos"
            " coordonnées sont désormais visibles dans l'annonce."
        ),
    ),
    "mobility.milestone_overdue": TemplateCreate(
        category="mobility",
        description="À l'agent : une étape de sa mobilité est en retard.",
        variables={"milestone": "visite logement", "due_date": "30/07/2027", "case": "logement"},
        email_subject="En retard : {{ milestone }} (échéance du {{ due_date }})",
        email_body=(
            "Bonjour,\n\nL'étape « {{ milestone }} » de votre démarche {{ case }} devait être"
            " faite avant le {{ due_date }}. Votre espace ATLAS peut vous aider à la rattraper."
            + _SIGNATURE
        ),
        sms_body="ATLAS : etape {{ milestone }} en retard (echeance {{ due_date }}).",
        in_app_title="En retard : {{ milestone }}",
        in_app_body="Démarche {{ case }}, échéance dépassée le {{ due_date }}.",
    ),
    "mobility.milestone_overdue_staff": TemplateCreate(
        category="mobility",
        description="À l'équipe : une étape d'un dossier est en retard.",
        variables={
            "milestone": "visite logement",
            "due_date": "30/07/2027",
            "case": "logement",
            "agent_id": "2019123456",
            "mutation_id": "TERRE-2027-004211",
        },
        email_subject="Retard {{ milestone }} ({{ mutation_id }})",
        email_body=(
            "Dossier {{ mutation_id }}, agent {{ agent_id }} : l'étape « {{ milestone }} »"
            " ({{ case }}) est en retard, échéance du {{ due_date }}." + _SIGNATURE
        ),
        in_app_title="Retard {{ milestone }}",
        in_app_body="Dossier {{ mutation_id }} ({{ case }}) : échéance du {{ due_date }} dépassée.",
    ),
    "mobility.milestone_due_staff": TemplateCreate(
        category="mobility",
        description="À l'équipe : une étape d'un dossier arrive à échéance.",
        variables={
            "milestone": "visite logement",
            "due_date": "30/07/2027",
            "case": "logement",
            "agent_id": "2019123456",
            "mutation_id": "TERRE-2027-004211",
        },
        email_subject="Échéance {{ milestone }} ({{ mutation_id }})",
        email_body=(
            "Dossier {{ mutation_id }}, agent {{ agent_id }} : l'étape « {{ milestone }} »"
            " ({{ case }}) arrive à échéance le {{ due_date }}." + _SIGNATURE
        ),
        in_app_title="Échéance {{ milestone }}",
        in_app_body="Dossier {{ mutation_id }} ({{ case }}) : avant le {{ due_date }}.",
    ),
    "requests.status_changed": TemplateCreate(
        category="requests",
        description="À l'agent : sa demande a changé de statut.",
        variables={"request_id": "6f1c2a9e", "status": "en cours de traitement"},
        email_subject="Votre demande est {{ status }}",
        email_body=(
            "Bonjour,\n\nVotre demande {{ request_id }} est désormais : {{ status }}." + _SIGNATURE
        ),
        in_app_title="Votre demande est {{ status }}",
        in_app_body="Demande {{ request_id }} : {{ status }}.",
    ),
    "requests.sla_breached": TemplateCreate(
        category="sla",
        description="À l'équipe : une demande a dépassé son délai de traitement.",
        variables={
            "request_id": "6f1c2a9e",
            "sla_due_at": "04/05/2027 10:00",
            "assignee": "non attribuée",
        },
        email_subject="Délai dépassé : demande {{ request_id }}",
        email_body=(
            "La demande {{ request_id }} ({{ assignee }}) devait être traitée avant le"
            " {{ sla_due_at }}." + _SIGNATURE
        ),
        in_app_title="Délai dépassé : demande {{ request_id }}",
        in_app_body="Échéance {{ sla_due_at }}, {{ assignee }}.",
    ),
    "vault.grant_created": TemplateCreate(
        category="vault",
        description="À l'agent : il a partagé un document de son coffre.",
        variables={"grantee": "l'équipe ATLAS de Toulon", "expires": "30/09/2027"},
        email_subject="Vous avez partagé un document",
        email_body=(
            "Bonjour,\n\nVous avez donné accès à un document de votre coffre à {{ grantee }}"
            " (jusqu'au {{ expires }})." + _SIGNATURE
        ),
        in_app_title="Document partagé",
        in_app_body="Accès donné à {{ grantee }} jusqu'au {{ expires }}.",
    ),
    "vault.grant_received": TemplateCreate(
        category="vault",
        description="À l'équipe : un agent lui a donné accès à un document.",
        variables={"owner_agent_id": "2019123456", "expires": "30/09/2027"},
        email_subject="Un document vous est partagé",
        email_body=(
            "L'agent {{ owner_agent_id }} vous donne accès à un document de son coffre"
            " (jusqu'au {{ expires }})." + _SIGNATURE
        ),
        in_app_title="Document partagé par {{ owner_agent_id }}",
        in_app_body="Accès en lecture jusqu'au {{ expires }}.",
    ),
    "catalog.crisis_mode": TemplateCreate(
        category="critical",
        description="À l'équipe : le mode crise de l'espace change.",
        variables={"space": "ATLAS de Toulon", "state": "activé", "reason": "Confinement"},
        email_subject="Mode crise {{ state }} : {{ space }}",
        email_body=(
            "Le mode crise est {{ state }} pour {{ space }}.\nMotif : {{ reason }}.\n"
            "En mode crise, les prestations non essentielles ne sont plus proposées au guichet"
            " (téléphone et en ligne restent ouverts) et les prestations de crise sont ouvertes."
            + _SIGNATURE
        ),
        sms_body="ATLAS : mode crise {{ state }} pour {{ space }}. Motif : {{ reason }}",
        in_app_title="Mode crise {{ state }}",
        in_app_body="{{ space }} : {{ reason }}.",
    ),
    "notify.digest": TemplateCreate(
        category="digest",
        description="Le résumé quotidien des notifications de l'équipe.",
        variables={"count": "2", "date": "01/05/2027", "items": "- Arrivée annoncée\n- ..."},
        email_subject="ATLAS : résumé du {{ date }} ({{ count }} notifications)",
        email_body="Bonjour,\n\nVoici les {{ count }} notifications du jour :\n\n{{ items }}"
        + _SIGNATURE,
    ),
    "generic.message": TemplateCreate(
        category="general",
        description="Un message libre (envois directs des intégrateurs et des équipes).",
        variables={"titre": "Information", "message": "Votre rendez-vous est confirmé."},
        email_subject="{{ titre }}",
        email_body="Bonjour,\n\n{{ message }}" + _SIGNATURE,
        sms_body="ATLAS : {{ message }}",
        in_app_title="{{ titre }}",
        in_app_body="{{ message }}",
    ),
    "generic.alert": TemplateCreate(
        category="critical",
        description="Un message critique libre (sécurité, crise) : ignore préférences et nuit.",
        variables={"titre": "Alerte", "message": "Consigne de sécurité."},
        email_subject="{{ titre }}",
        email_body="{{ message }}" + _SIGNATURE,
        sms_body="ATLAS : {{ message }}",
        in_app_title="{{ titre }}",
        in_app_body="{{ message }}",
    ),
}
