"""Entrypoints: SOAP, HTTP pages, CLI, workers. They translate; the service layer decides."""
