"""FHIR operations (``$name``): one module per operation, named after it."""
