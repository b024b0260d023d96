"""The ``winslow`` command line: talks to a Winslow server over HTTP."""
