"""Every change bound for the EHR, clearinghouse or gateway, written with the change and relayed until acknowledged."""
