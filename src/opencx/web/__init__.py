"""The web app for people (dashboard and customer-360 pages) lives here."""
