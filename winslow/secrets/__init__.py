"""Winslow's own credentials from Vault (or OpenBao): ``vault`` logs in, keeps its token
alive and reads KV v2; ``rotation`` re-reads what rotates and tells those who hold it;
``server`` maps the secrets onto the settings and the running parts."""
