"""After the event: when an event ended, and the thank-you e-mail to its attendees."""
