"""Appointments: the patient's visits from the EHR, booking, cancelling, moving, calendar files and reminders."""
