"""Configuration: backend specs, failure handling and the runtime config file; every error names its field path."""
