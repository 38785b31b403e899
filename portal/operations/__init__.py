"""Operations: health and readiness probes, and the staff view of installed plugins."""
