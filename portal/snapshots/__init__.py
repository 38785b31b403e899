"""The last copy the portal read of each EHR record, so pages still render when the EHR is down."""
