"""Hygie: the French national digital-health system on FHIR R4."""

__version__ = "0.1.0"
__all__ = ["__version__"]
