"""Supervisors' reports: payments collected, payment plans, A/R aging, eligibility outcomes, portal adoption.

Each report module is a service (no HTTP) that reads the portal's own tables for a :class:`Period` and
returns :class:`~portal.console.reports.figures.Figures`: the numbers once, which the page shows as a
chart and a table and the export writes as CSV, so the three never disagree.
"""
