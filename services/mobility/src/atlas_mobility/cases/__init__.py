"""Handler cases (logement, scolarité, déménagement) and their milestones."""
