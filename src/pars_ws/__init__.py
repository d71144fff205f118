"""pars-ws: a self-hostable mirror of ACCME's PARS learner-reporting web services."""

__version__ = "0.1.0"
