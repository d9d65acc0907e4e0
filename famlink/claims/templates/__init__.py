"""Jinja2 templates (a package so that wheels ship the .html files)."""
