"""Cadencia configuration: settings, column mappings, policy and templates."""
