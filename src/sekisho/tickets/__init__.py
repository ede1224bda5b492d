"""Ticket systems sekisho checks a request's ticket in (Jira)."""
