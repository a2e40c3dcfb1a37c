"""The offers-and-needs board: tutoring and help offered and sought, matched near each other."""
