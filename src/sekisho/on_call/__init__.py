"""Who is on call now (PagerDuty), for approval levels that pass while the requester is."""
