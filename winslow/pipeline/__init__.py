"""Pipeline definitions: the YAML schema, loading with precise errors, and validation."""
