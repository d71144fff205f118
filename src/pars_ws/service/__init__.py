"""Use cases over a unit of work: save learner activity, activities, status, matching, credentials."""
