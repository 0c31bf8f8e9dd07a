"""The fax bridge: mail and Slack in, FreeSWITCH out, and received faxes back to mail.

Intake turns a mail or a Slack request into a durable fax job, rendering turns documents into
TIFF-F pages (and received TIFFs into PDF), the worker sends jobs through the switch and retries,
and Fax2Mail delivers what the switch received.
"""
