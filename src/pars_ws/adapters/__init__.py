"""Adapters: storage, XML, Template B, mail, clock. They do I/O; the domain does not."""
