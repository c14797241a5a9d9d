"""Interaction as a service: persists chat, Q&A, polls and CTA clicks, and exports them."""
