"""Carefront's FHIR R4 EHR adapter."""
