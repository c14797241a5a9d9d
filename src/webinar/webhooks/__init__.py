"""Webhooks: signed callbacks to organisers' endpoints, with a delivery log and retries."""
